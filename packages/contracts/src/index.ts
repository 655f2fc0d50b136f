export * from './config.js';
export * from './decision.js';
export * from './errors.js';
export * from './names.js';
export * from './signal.js';
export * from './cluster.js';
