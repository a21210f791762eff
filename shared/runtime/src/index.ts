export * from './infra';
export * from './run-main';
export * from './observer';
export { SERVED_PROTOCOLS } from './branch-transport';
export * from './alerts';
