export * from './redis/keys';
export * from './redis/scripts';
export * from './redis/event-log';
export * from './redis/feed-subscriber';
export * from './redis/read-model';
export * from './redis/managed-redis';
export * from './http-branch/http-branch-transport';
export * from './bullmq/pass-scheduler';
