export * from './infra';
export * from './run-main';
