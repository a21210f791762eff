export * from './worker';
export * from './projector/projector';
export * from './sweep';
export * from './rebuild';
export * from './replay';
export * from './metrics-server';
