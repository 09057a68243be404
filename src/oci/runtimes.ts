// The one place that picks a runtime implementation from a handler's configured type.
import type { RuntimeDriver, RuntimeDriverOptions } from './runtime.js';
import { RuncRuntime } from './runtime-runc.js';
import { RunscRuntime } from './runtime-runsc.js';

export function createRuntime(options: RuntimeDriverOptions): RuntimeDriver {
  switch (options.config.type) {
    case 'runsc':
      return new RunscRuntime(options);
    case 'oci':
      return new RuncRuntime(options);
  }
}
