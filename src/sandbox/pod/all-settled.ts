// Steps of one operation run at once, where a failure of one must not start the undo
// while another still makes things (S5: the undo runs after every branch has settled).

/**
 * Promise.all that waits for every branch before it rejects (with the first failure):
 * the undo of a failed step must never run while a branch still makes things.
 */
export async function allSettledFirst<T extends readonly unknown[]>(branches: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(branches);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
