/** Cuts `data` at the given sizes, cycling through them: how a pipe or socket may deliver it. */
export function pieces<T extends string | Buffer>(data: T, sizes: readonly number[]): T[] {
  const out: T[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    out.push((typeof data === 'string' ? data.slice(at, at + size) : data.subarray(at, at + size)) as T);
    at += size;
  }
  return out;
}
