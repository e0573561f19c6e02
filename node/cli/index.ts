// node/cli — the program (DESIGN.md §8): the command line, the daemon (`darkfs up`, the
// composition root that builds every part in dependency order and closes them in reverse),
// the control API's client (the server is node/api/), the data dir's config.
//
// Contract:
//  - The command line is a contract: exit 0 on success, one clear line on stderr otherwise.
//  - Commands other than `init` and `up` talk to the running host over its control socket and
//    never load libp2p or the data path themselves.
//  - The daemon is the only place where parts meet: no part reaches another except through
//    what the daemon hands it at construction.
export { ControlClient } from './client.ts'
export { init, loadConfig, saveConfig, configKeys, FLAG_ONLY } from './config.ts'
export { COMMANDS } from './args.ts'
export { startDaemon } from './daemon.ts'
export type { Daemon, DaemonOptions } from './daemon.ts'
