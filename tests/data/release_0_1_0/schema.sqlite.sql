-- The schema nangluc 0.1.0 created (SQLModel create_all), sqlite dialect.
CREATE TABLE bank_version (
	version VARCHAR(200) NOT NULL,
	parent VARCHAR(200),
	status VARCHAR(16) NOT NULL,
	document JSON NOT NULL,
	created DATETIME NOT NULL,
	activated DATETIME,
	PRIMARY KEY (version)
);
CREATE UNIQUE INDEX uq_bank_version_one_active ON bank_version (status) WHERE status = 'active';
CREATE TABLE test_session (
	id CHAR(32) NOT NULL,
	bank_version VARCHAR(200) NOT NULL,
	config VARCHAR(100) NOT NULL,
	language VARCHAR(8) NOT NULL,
	ward VARCHAR(100),
	age_group VARCHAR(16),
	status VARCHAR(16) NOT NULL,
	state JSON NOT NULL,
	answered INTEGER NOT NULL,
	lock_version INTEGER NOT NULL,
	created DATETIME NOT NULL,
	updated DATETIME NOT NULL,
	finished DATETIME,
	overall_score FLOAT,
	overall_se FLOAT,
	overall_level INTEGER,
	overall_decided BOOLEAN,
	area_scores JSON,
	PRIMARY KEY (id),
	FOREIGN KEY(bank_version) REFERENCES bank_version (version)
);
CREATE INDEX ix_test_session_age_group ON test_session (age_group);
CREATE INDEX ix_test_session_bank_version ON test_session (bank_version);
CREATE INDEX ix_test_session_status ON test_session (status);
CREATE INDEX ix_test_session_ward ON test_session (ward);
CREATE TABLE response (
	id INTEGER NOT NULL,
	session_id CHAR(32) NOT NULL,
	seq INTEGER NOT NULL,
	item_id VARCHAR(100) NOT NULL,
	response INTEGER NOT NULL,
	score INTEGER NOT NULL,
	created DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_response_session_seq UNIQUE (session_id, seq),
	CONSTRAINT uq_response_session_item UNIQUE (session_id, item_id),
	FOREIGN KEY(session_id) REFERENCES test_session (id)
);
CREATE INDEX ix_response_session_id ON response (session_id);
