export * from './assignment/index.js';
