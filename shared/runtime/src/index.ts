export * from './infra';
export * from './run-main';
export * from './observer';
export * from './alerts';
