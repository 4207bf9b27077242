-- Section A. Schema "public": a fresh dCache billing database (dCache master 77340d6671, 2026-07-22).
BEGIN;
SET search_path = public;
CREATE TABLE billinginfo (
    client character varying(256),
    initiator character varying(256),
    isnew boolean,
    protocol character varying(256),
    transfersize bigint,
    fullsize bigint,
    storageclass character varying(256),
    connectiontime bigint,
    action character varying(256),
    cellname character varying(256),
    datestamp timestamp with time zone,
    errorcode integer,
    errormessage character varying(8000),
    pnfsid character varying(36),
    transaction character varying(256),
    p2p boolean,
    fqan character varying(256),
    mappeduid integer,
    mappedgid integer,
    owner character varying(256)
);
CREATE TABLE billinginfo_p2p_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    size bigint,
    transferred bigint
);
CREATE TABLE billinginfo_rd_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    size bigint,
    transferred bigint
);
CREATE TABLE billinginfo_tm_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    minimum bigint,
    maximum bigint,
    average bigint
);
CREATE TABLE billinginfo_wr_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    size bigint,
    transferred bigint
);
CREATE TABLE doorinfo (
    client character varying(256),
    mappedgid integer,
    mappeduid integer,
    owner character varying(256),
    path character varying(8000),
    queuedtime bigint,
    connectiontime bigint,
    action character varying(256),
    cellname character varying(256),
    datestamp timestamp with time zone,
    errorcode integer,
    errormessage character varying(8000),
    pnfsid character varying(36),
    transaction character varying(256),
    fqan character varying(256)
);
CREATE TABLE hitinfo (
    filecached boolean,
    action character varying(256),
    cellname character varying(256),
    datestamp timestamp with time zone,
    errorcode integer,
    errormessage character varying(8000),
    pnfsid character varying(36),
    transaction character varying(256)
);
CREATE TABLE hitinfo_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    notcached bigint,
    cached bigint
);
CREATE TABLE storageinfo (
    queuedtime bigint,
    fullsize bigint,
    storageclass character varying(256),
    connectiontime bigint,
    action character varying(256),
    cellname character varying(256),
    datestamp timestamp with time zone,
    errorcode integer,
    errormessage character varying(8000),
    pnfsid character varying(36),
    transaction character varying(256)
);
CREATE TABLE storageinfo_rd_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    size bigint
);
CREATE TABLE storageinfo_wr_daily (
    date timestamp without time zone NOT NULL,
    count bigint,
    size bigint
);
ALTER TABLE ONLY billinginfo_p2p_daily ADD CONSTRAINT billinginfo_p2p_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY billinginfo_rd_daily ADD CONSTRAINT billinginfo_rd_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY billinginfo_tm_daily ADD CONSTRAINT billinginfo_tm_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY billinginfo_wr_daily ADD CONSTRAINT billinginfo_wr_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY hitinfo_daily ADD CONSTRAINT hitinfo_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY storageinfo_rd_daily ADD CONSTRAINT storageinfo_rd_daily_pkey PRIMARY KEY (date);
ALTER TABLE ONLY storageinfo_wr_daily ADD CONSTRAINT storageinfo_wr_daily_pkey PRIMARY KEY (date);
CREATE INDEX billinginfo_client_idx ON billinginfo USING btree (client);
CREATE INDEX billinginfo_date_idx ON billinginfo USING btree (datestamp);
CREATE INDEX billinginfo_initiator_idx ON billinginfo USING btree (initiator);
CREATE INDEX billinginfo_isnew_idx ON billinginfo USING btree (isnew);
CREATE INDEX billinginfo_p2p_daily_date_idx ON billinginfo_p2p_daily USING btree (date);
CREATE INDEX billinginfo_p2p_idx ON billinginfo USING btree (p2p);
CREATE INDEX billinginfo_pnfsid_idx ON billinginfo USING btree (pnfsid);
CREATE INDEX billinginfo_rd_daily_date_idx ON billinginfo_rd_daily USING btree (date);
CREATE INDEX billinginfo_storageclass_date_idx ON billinginfo USING btree (storageclass);
CREATE INDEX billinginfo_tm_daily_date_idx ON billinginfo_tm_daily USING btree (date);
CREATE INDEX billinginfo_transaction_date_idx ON billinginfo USING btree (transaction);
CREATE INDEX billinginfo_wr_daily_date_idx ON billinginfo_wr_daily USING btree (date);
CREATE INDEX doorinfo_date_idx ON doorinfo USING btree (datestamp);
CREATE INDEX doorinfo_owner_idx ON doorinfo USING btree (owner);
CREATE INDEX doorinfo_pnfsid_idx ON doorinfo USING btree (pnfsid);
CREATE INDEX doorinfo_transaction_idx ON doorinfo USING btree (transaction);
CREATE INDEX hitinfo_daily_date_idx ON hitinfo_daily USING btree (date);
CREATE INDEX hitinfo_date_idx ON hitinfo USING btree (datestamp);
CREATE INDEX hitinfo_pnfsid_idx ON hitinfo USING btree (pnfsid);
CREATE INDEX hitinfo_transaction_idx ON hitinfo USING btree (transaction);
CREATE INDEX storageinfo_action_idx ON storageinfo USING btree (action);
CREATE INDEX storageinfo_date_idx ON storageinfo USING btree (datestamp);
CREATE INDEX storageinfo_pnfsid_idx ON storageinfo USING btree (pnfsid);
CREATE INDEX storageinfo_rd_daily_date_idx ON storageinfo_rd_daily USING btree (date);
CREATE INDEX storageinfo_storageclass_idx ON storageinfo USING btree (storageclass);
CREATE INDEX storageinfo_transaction_idx ON storageinfo USING btree (transaction);
CREATE INDEX storageinfo_wr_daily_date_idx ON storageinfo_wr_daily USING btree (date);
COMMIT;

