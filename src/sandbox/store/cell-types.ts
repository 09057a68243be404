// The two kinds of cell (store/cell.ts): a pod sandbox and a container, each its record,
// mutex, store handle and event sink. Their own file, so the steps of pod/ and container/
// name them without importing the managers that make them.
import type { ContainerRecord, ContainerState } from '../container/container.js';
import type { ContainerEventType } from '../container/container-events.js';
import type { SandboxRecord, SandboxState } from '../pod/sandbox.js';
import type { Cell } from './cell.js';

/** A pod sandbox as a cell: the one way its record changes. */
export type PodSandbox = Cell<SandboxState, SandboxRecord, ContainerEventType>;

/** A container as a cell: the one way its record changes. */
export type Container = Cell<ContainerState, ContainerRecord, ContainerEventType>;
