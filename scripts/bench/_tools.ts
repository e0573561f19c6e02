// The outside tools a bench needs (fio, sqlite3, git, glusterd...): found on the PATH, or
// installed with Debian's apt when missing and this process is root; otherwise an error that
// names the packages to install. apt runs once per call, for every missing package at once
// (`apt-get update` first only when the plain install fails: the lists may be stale or absent).
import { have, sh } from './_proc.ts'

/** Installs can take minutes on a slow mirror. */
const APT_TIMEOUT_MS = 15 * 60_000

/** A command and the Debian package that provides it. */
export interface Tool { cmd: string, pkg: string }

/** The tools of `tools` that are not on the PATH. */
export async function missing (tools: Tool[]): Promise<Tool[]> {
  const out: Tool[] = []
  for (const t of tools) if (!await have(t.cmd)) out.push(t)
  return out
}

/** Make sure every tool is there, installing the missing ones with apt (as root); throws with what to install otherwise. */
export async function ensureTools (tools: Tool[], who = 'bench'): Promise<void> {
  const lacking = await missing(tools)
  if (lacking.length === 0) return
  const pkgs = [...new Set(lacking.map(t => t.pkg))]
  const cmds = lacking.map(t => t.cmd).join(', ')
  if (process.getuid?.() !== 0) throw new Error(`${who}: ${cmds} missing; install them (as root: apt-get install ${pkgs.join(' ')}) or run the bench as root`)
  if (!await have('apt-get')) throw new Error(`${who}: ${cmds} missing and no apt-get here; install ${pkgs.join(' ')}`)
  process.stdout.write(`  ${who}: installing ${pkgs.join(' ')} (apt-get) for ${cmds}\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = async (): Promise<void> => { await sh('apt-get', ['install', '-y', '-q', ...pkgs], { env, timeoutMs: APT_TIMEOUT_MS }) }
  try {
    await install()
  } catch {
    // the package lists may be stale or empty (fresh containers): refresh them and try once more
    await sh('apt-get', ['update', '-q'], { env, timeoutMs: APT_TIMEOUT_MS })
    await install()
  }
  const still = await missing(lacking)
  if (still.length > 0) throw new Error(`${who}: ${still.map(t => t.cmd).join(', ')} still missing after apt-get install ${pkgs.join(' ')}`)
}
