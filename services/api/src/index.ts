export * from './app';
export * from './http/dtm-router';
export * from './http/dtm-service';
export * from './http/json-rpc';
export * from './http/validate-global';
export * from './http/bad-request';
export * from './server';
