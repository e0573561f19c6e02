// The environment `darkfs up` gives its worker process (node/cli/supervisor.ts workerEnv): marked
// as a worker, without systemd's notify socket, and with a threadpool of WORKER_THREADPOOL_SIZE
// threads (Node's default of 4 let a writer's block syncs hold its hashing back) unless the
// user set UV_THREADPOOL_SIZE.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WORKER_ENV, WORKER_THREADPOOL_SIZE, workerEnv } from '../../node/cli/supervisor.ts'

describe('supervisor: the worker\'s environment', function () {
  it('workerEnv(): the worker mark, no NOTIFY_SOCKET, UV_THREADPOOL_SIZE unless set, the rest as it is', () => {
    const env = workerEnv({ NOTIFY_SOCKET: '/run/x', HOME: '/root', PATH: '/bin' })
    assert.equal(env[WORKER_ENV], '1')
    assert.equal(env.NOTIFY_SOCKET, undefined)
    assert.equal(env.UV_THREADPOOL_SIZE, String(WORKER_THREADPOOL_SIZE))
    assert.equal(env.HOME, '/root')
    assert.equal(env.PATH, '/bin')
    assert.equal(workerEnv({ UV_THREADPOOL_SIZE: '4' }).UV_THREADPOOL_SIZE, '4', 'a size the user chose stays')
  })

  it('scripts/darkfs.service gives the host it runs in its own process (up --no-restart) the worker\'s threadpool', async () => {
    const unit = await readFile(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'darkfs.service'), 'utf8')
    assert.match(unit, /^ExecStart=.* up --no-restart /m)
    assert.match(unit, new RegExp(`^Environment=UV_THREADPOOL_SIZE=${WORKER_THREADPOOL_SIZE}$`, 'm'))
  })
})
