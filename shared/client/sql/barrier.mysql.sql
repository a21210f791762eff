-- The sub-transaction barrier table for MySQL/MariaDB (dtm_barrier.barrier, as DTM's sqls/dtmcli.barrier.*.sql).
-- Generated from mysqlBarrierDdl() in src/; a unit test keeps the two equal.

CREATE DATABASE IF NOT EXISTS dtm_barrier /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

CREATE TABLE IF NOT EXISTS dtm_barrier.barrier (
  id bigint(22) PRIMARY KEY AUTO_INCREMENT,
  trans_type varchar(45) DEFAULT '',
  gid varchar(128) DEFAULT '',
  branch_id varchar(128) DEFAULT '',
  op varchar(45) DEFAULT '',
  barrier_id varchar(45) DEFAULT '',
  reason varchar(45) DEFAULT '' COMMENT 'the branch type who insert this record',
  create_time datetime DEFAULT now(),
  update_time datetime DEFAULT now(),
  KEY (create_time),
  KEY (update_time),
  UNIQUE KEY (gid, branch_id, op, barrier_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
