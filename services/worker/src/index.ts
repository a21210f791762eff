export * from './worker';
export * from './projector';
export * from './sweep';
