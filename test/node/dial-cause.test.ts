// What asked for a new connection (node/net/traffic.ts dialCause): the first darkfs file on the
// dialling call's stack outside the host's own plumbing (host.ts, rpc.ts), else the libp2p
// service package, else 'other'. bench:scale sums them per cause over its idle window.
import assert from 'node:assert/strict'
import { dialCause } from '../../node/net/traffic.ts'

const frame = (where: string): string => `    at f (${where}:10:5)`
const stack = (...frames: string[]): string => ['Error: dial', ...frames.map(frame)].join('\n')

describe('dialCause (node/net/traffic.ts)', function () {
  it('names the first darkfs file past host.ts and rpc.ts', () => {
    assert.equal(dialCause(stack(
      '/w/node_modules/libp2p/dist/src/connection-manager/index.js',
      'file:///w/node/net/host.ts',
      'file:///w/node/net/rpc.ts',
      'file:///w/node/net/member-service.ts',
      'file:///w/node/cli/daemon.ts'
    )), 'node/net/member-service.ts')
    assert.equal(dialCause(stack('/w/node_modules/libp2p/dist/src/libp2p.js', '/w/swarm/swarm.ts', '/w/node/keeper/repair.ts')), 'swarm/swarm.ts')
    // past the daemon's adapters (the swarm's dialProtocol), to the part that called through them
    assert.equal(dialCause(stack('file:///w/node/net/host.ts', 'file:///w/node/cli/daemon.ts', 'file:///w/swarm/swarm.ts')), 'swarm/swarm.ts')
    assert.equal(dialCause(stack('file:///w/node/net/host.ts', 'file:///w/node/cli/daemon.ts')), 'node/cli/daemon.ts')
  })

  it('names the libp2p service when no darkfs file asked, else other', () => {
    assert.equal(dialCause(stack(
      '/w/node_modules/libp2p/dist/src/connection-manager/index.js',
      '/w/node_modules/@libp2p/kad-dht/dist/src/network.js',
      '/w/node_modules/@libp2p/kad-dht/dist/src/query/manager.js'
    )), '@libp2p/kad-dht')
    assert.equal(dialCause(stack('/w/node_modules/libp2p/dist/src/libp2p.js', 'node:internal/process/task_queues')), 'other')
    assert.equal(dialCause(undefined), 'other')
  })
})
