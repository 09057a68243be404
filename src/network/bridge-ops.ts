// The host side of a CNI bridge. The bridge plugin's DEL removes the pod's veth but leaves
// the bridge (and its gateway address) behind; sandlot removes it once no pod uses it.
import fs from 'node:fs';
import { runProcess } from '../../native/index.js';
import { InternalError, errnoCode, errorMessage } from '../errors.js';

const IP_TIMEOUT_MS = 30_000;
const IP_OUTPUT_LIMIT_BYTES = 64 * 1024;

export interface BridgeOps {
  /** Interfaces attached to `bridge`, or undefined when there is no such bridge. */
  ports(bridge: string): string[] | undefined;
  remove(bridge: string): Promise<void>;
}

export const HOST_BRIDGE_OPS: BridgeOps = {
  ports(bridge) {
    try {
      return fs.readdirSync(`/sys/class/net/${bridge}/brif`);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw new InternalError(`listing ports of bridge "${bridge}": ${errorMessage(e)}`, { cause: e });
    }
  },
  async remove(bridge) {
    let said: string;
    try {
      const r = await runProcess('ip', ['link', 'delete', 'dev', bridge, 'type', 'bridge'], { timeoutMs: IP_TIMEOUT_MS, outputLimit: IP_OUTPUT_LIMIT_BYTES });
      if (r.code === 0) return;
      said = r.stderr.trim() || `ip exited with ${r.code ?? r.signal}${r.timedOut ? ' (killed after its timeout)' : ''}`;
    } catch (e) {
      said = errorMessage(e);
    }
    // Gone meanwhile is what we wanted.
    if (!fs.existsSync(`/sys/class/net/${bridge}`)) return;
    throw new InternalError(`removing bridge "${bridge}": ${said}`);
  },
};
