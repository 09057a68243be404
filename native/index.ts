// The native layer: koffi bindings to libc, one typed function each.
export * from './libc.js';
export * from './flock.js';
