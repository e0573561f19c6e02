// A child process that serves an in-memory volume at the dir given as argv[2], prints
// "mounted" once ready and then serves until killed (used to leave a stale mount behind).
import { mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

const dir = process.argv[2]
const m = await mount(createMemoryVolume(), dir)
process.stdout.write('mounted\n')
process.on('SIGTERM', () => { m.unmount().then(() => process.exit(0), () => process.exit(1)) })
