// The built-in busybox image (oci-layout-writer --busybox, what `make run` preloads)
// links every applet busybox was built with: `exec C uname -a` and friends run in a
// container from it, under runc and runsc alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { busyboxApplets } from '../../../src/image/oci-layout-writer.js';
import { makeContainerEnv, type ContainerEnv } from '../container/container-env.js';

async function execSync(env: ContainerEnv, id: string, cmd: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd, timeout: 0 }, 120_000);
  return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exitCode: r.exit_code };
}

test("the busybox applet list is the binary's own, well past the 20 once linked", () => {
  const applets = busyboxApplets();
  for (const a of ['sh', 'uname', 'sed', 'awk', 'head', 'wc', 'grep', 'vi']) assert.ok(applets.includes(a), a);
  assert.ok(applets.length > 100, `${applets.length} applets`);
  assert.ok(applets.every((a) => !a.includes('/') && a !== 'busybox'));
});

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: uname -a, sed, awk, head and wc run in a container of the built-in busybox`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod(`applets-${handler}`, {}, handler);
    const id = await env.createContainer(pod, 'shell', { command: ['/bin/sh', '-c', 'sleep 100000'] });
    await env.d.runtime('StartContainer', { container_id: id }, 120_000);
    await env.waitState(id, 'CONTAINER_RUNNING', 120_000);

    const uname = await execSync(env, id, ['uname', '-a']);
    assert.equal(uname.exitCode, 0, uname.stderr);
    assert.match(uname.stdout, /^Linux /);
    const sed = await execSync(env, id, ['sed', 's/b/B/', '/etc/group']);
    assert.equal(sed.exitCode, 0, sed.stderr);
    assert.match(sed.stdout, /^noBody:x:65534:$/m);
    const pipeline = await execSync(env, id, ['sh', '-c', "awk -F: '{ print $1 }' /etc/passwd | head -n 1 | wc -c"]);
    assert.equal(pipeline.exitCode, 0, pipeline.stderr);
    assert.equal(pipeline.stdout.trim(), '5'); // "root\n"
    // Every applet is a command on PATH, not only the ones a test happens to use.
    const which = await execSync(env, id, ['sh', '-c', 'for a in uname expr od xargs tr cut sort; do command -v $a || exit 9; done']);
    assert.equal(which.exitCode, 0, which.stdout + which.stderr);
    assert.equal(which.stdout.trim().split('\n').length, 7);
  });
}
