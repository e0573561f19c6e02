// Temp dirs and teardown registered as things are created, run in reverse order.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A step added with must() (a mount that has to be gone) fails run(), with its reason, once every
// step has run; the failure of a step added with add() is printed and run() goes on.
export class Teardown {
  private readonly steps: Array<{ step: () => Promise<unknown> | unknown, must: boolean }> = []
  add (step: () => Promise<unknown> | unknown): void { this.steps.push({ step, must: false }) }
  must (step: () => Promise<unknown> | unknown): void { this.steps.push({ step, must: true }) }
  async run (): Promise<void> {
    const failed: unknown[] = []
    while (this.steps.length > 0) {
      const { step, must } = this.steps.pop()!
      try {
        await step()
      } catch (err) {
        console.error('teardown:', err)
        if (must) failed.push(err)
      }
    }
    if (failed.length === 1) throw failed[0]
    if (failed.length > 1) throw new AggregateError(failed, `${failed.length} teardown steps failed: ${failed.map(e => String((e as Error)?.message ?? e)).join('; ')}`)
  }
}

export async function tempDir (t: Teardown, prefix = 'darkfs-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.add(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}
