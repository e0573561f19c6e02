// Temp dirs and teardown registered as things are created, run in reverse order.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export class Teardown {
  private readonly steps: Array<() => Promise<unknown> | unknown> = []
  add (step: () => Promise<unknown> | unknown): void { this.steps.push(step) }
  async run (): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!
      try { await step() } catch (err) { console.error('teardown:', err) }
    }
  }
}

export async function tempDir (t: Teardown, prefix = 'darkfs-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.add(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}
