// The host side of a CNI bridge. The bridge plugin's DEL removes the pod's veth but leaves
// the bridge (and its gateway address) behind; sandlot removes it once no pod uses it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { InternalError, errnoCode, errorMessage } from '../errors.js';

const execFileAsync = promisify(execFile);
const IP_TIMEOUT_MS = 30_000;

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
    try {
      await execFileAsync('ip', ['link', 'delete', 'dev', bridge, 'type', 'bridge'], { timeout: IP_TIMEOUT_MS });
    } catch (e) {
      // Gone meanwhile is what we wanted.
      if (!fs.existsSync(`/sys/class/net/${bridge}`)) return;
      const stderr = (e as { stderr?: string }).stderr?.trim();
      throw new InternalError(`removing bridge "${bridge}": ${stderr || errorMessage(e)}`, { cause: e });
    }
  },
};
