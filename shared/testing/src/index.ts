export * from './free-port';
export * from './redis-server';
export * from './redis-cluster';
export * from './kafka-mock';
export * from './esdb-fake';
export * from './tx-fixtures';
