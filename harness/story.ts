// A story told in steps, for suites whose tests are the stages of one scenario on one costly
// fixture (a cluster that loses hosts, a disk that fills and empties, a host cut off and back).
//
// Each `it` runs its step through `story.step(fn)`: a step runs once, and only after every step
// declared before it, whichever `it` asks first. So `--grep` of any one test, or any order of
// the tests, runs the stages it stands on, in the story's order, and no test relies on another
// having run first. A step that failed fails every later step with the same error.
//
//   const story = new Story()
//   it('two hosts stop: degraded', story.step(async () => { ... }))
//   it('then repaired', story.step(async () => { ... }))   // runs the step above first

export class Story {
  private readonly steps: Array<() => Promise<void>> = []
  private readonly runs: Array<Promise<void> | undefined> = []

  /** Declares the next step; the returned function (an `it` body) runs it and every step before it, each once. */
  step (fn: () => Promise<void> | void): () => Promise<void> {
    const i = this.steps.push(async () => { await fn() }) - 1
    return async () => { await this.run(i) }
  }

  private async run (i: number): Promise<void> {
    this.runs[i] ??= (i === 0 ? Promise.resolve() : this.run(i - 1)).then(this.steps[i])
    await this.runs[i]
  }
}
