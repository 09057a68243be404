// Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the kubelet asks first.
import type { SandlotConfig } from '../config/types.js';
import { InvalidArgumentError } from '../errors.js';
import { answer, type HandlerSet } from './handler-types.js';

export const RUNTIME_NAME = 'sandlot';
export const CRI_API_VERSION = 'v1';
/** The kubelet checks this literal in VersionResponse.version. */
const KUBE_API_VERSION = '0.1.0';

export interface Readiness {
  ready: boolean;
  reason: string;
  message: string;
}

export interface HandlerReadiness {
  name: string;
  ready: boolean;
  reason: string;
  /** RuntimeHandlerFeatures: what the handler does here (its features and the kernel's). */
  features: { recursive_read_only_mounts: boolean; user_namespaces: boolean };
}

export interface RuntimeInfoDeps {
  version: string;
  config: SandlotConfig;
  /** The config file that was read, if any (for verbose Status). */
  configFile: string | undefined;
  networkStatus(): Promise<Readiness>;
  runtimeHandlers(): HandlerReadiness[];
  /** Receives the pod CIDR from UpdateRuntimeConfig. */
  setPodCidr(cidr: string): void;
}

const CIDR = /^[0-9a-fA-F:.]+\/\d{1,3}$/;

export function runtimeInfoHandlers(deps: RuntimeInfoDeps): HandlerSet {
  return {
    unary: {
      Version: () =>
        Promise.resolve({
          version: KUBE_API_VERSION,
          runtime_name: RUNTIME_NAME,
          runtime_version: deps.version,
          runtime_api_version: CRI_API_VERSION,
        }),

      Status: async (req) => {
        const handlers = deps.runtimeHandlers();
        const def = handlers.find((h) => h.name === deps.config.default_runtime);
        const runtimeReady: Readiness = def?.ready
          ? { ready: true, reason: '', message: '' }
          : {
              ready: false,
              reason: 'DefaultRuntimeNotReady',
              message: `default runtime handler "${deps.config.default_runtime}" is not ready: ${def?.reason ?? 'not configured'}`,
            };
        const network = await deps.networkStatus();
        const conditions = [
          { type: 'RuntimeReady', status: runtimeReady.ready, reason: runtimeReady.reason, message: runtimeReady.message },
          {
            type: 'NetworkReady',
            status: network.ready,
            reason: network.ready ? '' : network.reason,
            message: network.ready ? '' : network.message,
          },
        ];
        const info: Record<string, string> = {};
        if (req.verbose) {
          info.config = JSON.stringify(deps.config);
          info.configFile = deps.configFile ?? '';
          info.runtimeHandlers = JSON.stringify(handlers);
          info.network = JSON.stringify(network);
        }
        return {
          status: { conditions },
          info,
          runtime_handlers: handlers.map((h) => ({
            name: h.name,
            features: h.features,
          })),
          features: { supplemental_groups_policy: false },
        };
      },

      RuntimeConfig: () => Promise.resolve({ linux: { cgroup_driver: 'CGROUPFS' } }),

      UpdateRuntimeConfig: (req) =>
        answer(() => {
          const cidr: unknown = req.runtime_config?.network_config?.pod_cidr;
          if (typeof cidr === 'string' && cidr !== '') {
            for (const part of cidr.split(',')) {
              if (!CIDR.test(part.trim())) {
                throw new InvalidArgumentError(`updating runtime config: runtime_config.network_config.pod_cidr "${cidr}" is not a CIDR list`);
              }
            }
            deps.setPodCidr(cidr);
          }
          return {};
        }),
    },
  };
}
