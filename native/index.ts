// The native layer: koffi bindings to libc, one typed function each.
export * from './libc.js';
export * from './flock.js';
export * from './netns.js';
export * from './mount.js';
export * from './mount-api.js';
export * from './mount-tree.js';
export * from './mknod.js';
export * from './xattr.js';
export * from './socket.js';
export * from './recvmsg.js';
export * from './ioctl.js';
export * from './seqpacket.js';
export * from './pty.js';
export * from './pipe.js';
export * from './spawn.js';
export * from './link-up.js';
export * from './pid-watch.js';
