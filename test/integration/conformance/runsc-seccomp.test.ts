// Seccomp profiles are enforced on both handlers (issue 10 item 7: runsc ignored them
// without --oci-seccomp). A Localhost profile that makes chmod and sethostname fail
// with EPERM blocks them and nothing else; RuntimeDefault shows a filter in
// /proc/self/status and keeps unshare (a syscall it refuses without CAP_SYS_ADMIN) out;
// Unconfined has no filter.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeContainerEnv, type ContainerEnv } from '../container/container-env.js';

/** Allows everything but chmod/fchmod/fchmodat and sethostname, which fail with EPERM (errno 1). */
const BLOCKING_PROFILE = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64'],
  syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat', 'sethostname'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

/** Runs `script` in a new container of `pod` with `seccomp`, returns its exit code and log lines. */
async function runScript(
  env: ContainerEnv,
  pod: string,
  name: string,
  script: string,
  seccomp: Record<string, unknown>,
): Promise<{ code: number; out: string }> {
  const id = await env.createContainer(pod, name, { command: ['/bin/sh', '-c', script], linux: { security_context: { seccomp } } });
  await env.d.runtime('StartContainer', { container_id: id }, 120_000);
  const st = await env.waitState(id, 'CONTAINER_EXITED', 120_000);
  const out = fs
    .readFileSync(st.log_path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/^\S+ std(out|err) [FP] /, ''))
    .join('\n');
  return { code: st.exit_code, out };
}

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: a Localhost seccomp profile blocks chmod and sethostname with EPERM, and only them`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const profile = path.join(env.d.dir, 'block-chmod.json');
    fs.writeFileSync(profile, JSON.stringify(BLOCKING_PROFILE));
    const pod = await env.runPod(`seccomp-local-${handler}`, {}, handler);
    const r = await runScript(
      env,
      pod,
      'local',
      [
        'grep "^Seccomp:" /proc/self/status',
        'touch /tmp/f && echo touched',
        'chmod 600 /tmp/f && echo chmod-allowed || echo chmod-blocked',
        'hostname other && echo sethostname-allowed || echo sethostname-blocked',
      ].join('; '),
      { profile_type: 'Localhost', localhost_ref: profile },
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^Seccomp:\s+2$/m, r.out);
    assert.match(r.out, /^touched$/m, r.out);
    assert.match(r.out, /^chmod-blocked$/m, r.out);
    assert.match(r.out, /^sethostname-blocked$/m, r.out);
    assert.match(r.out, /Operation not permitted/, r.out);
  });

  test(`${handler}: RuntimeDefault installs a filter (Seccomp: 2) and refuses unshare; Unconfined has none`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod(`seccomp-default-${handler}`, {}, handler);
    const def = await runScript(env, pod, 'default', 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo unshare-allowed || echo unshare-blocked', {
      profile_type: 'RuntimeDefault',
    });
    assert.match(def.out, /^Seccomp:\s+2$/m, def.out);
    assert.match(def.out, /^unshare-blocked$/m, def.out);
    const none = await runScript(env, pod, 'unconfined', 'grep "^Seccomp:" /proc/self/status', { profile_type: 'Unconfined' });
    assert.match(none.out, /^Seccomp:\s+0$/m, none.out);
  });
}
