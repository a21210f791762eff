export * from './global-transaction/types';
export * from './global-transaction/events';
export * from './global-transaction/commands';
export * from './global-transaction/state';
export * from './global-transaction/decide';
export * from './global-transaction/saga';
export * from './global-transaction/errors';
export * from './branch/outcome';
