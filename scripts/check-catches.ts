// No silent catches (issue 11 §5, run by `npm run lint`). In node/, swarm/ and fuse/ (tests are
// free), every caught error is one of:
//   - rethrown:  a `throw` in the handler (the same error, or a typed one wrapping it);
//   - logged:    a logger call in the handler: `log(...)`, `log.error(...)`, `log.trace(...)`
//                (also on a field or option: `this.log.error(...)`, `c.log?.(...)`), or a call to
//                one of the `reporters` below: functions whose job is to hand the error on;
//   - handed on: the caught error goes, as an argument, into a call made for its effect
//                (`this.fail(err)`, `stream.abort(err)`, `send(res, toWire(err))`); a test such as
//                `if (isGone(err)) return` is not handing on;
//   - ignored for a stated reason: a comment in the handler, or on the line of the `catch`, or
//                (for a `.catch(...)` handler) on the lines right above it, saying why ignoring is
//                right: `.catch(() => {}) // ignored: the socket may already be gone`.
// Checked: `try {} catch (err) {...}` clauses, `.catch(handler)` calls (`.catch(() => {})`
// included) and the rejection handler of `.then(ok, handler)`. An empty catch block with no comment is always an offence.
//
// The source is parsed with the TypeScript compiler's own API (TS 7's `typescript/unstable/sync`,
// which asks the bundled tsgo for the AST of the project in tsconfig.json), so strings, template
// literals and regular expressions cannot fool it. Prints `file:line: what` for each offence and the
// count, and exits 1 when there is any.
import { readdirSync, statSync, existsSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { API } from 'typescript/unstable/sync'
import { SyntaxKind, type Node, type SourceFile } from 'typescript/unstable/ast'
import { createScanner } from 'typescript/unstable/ast/scanner'

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const rooms = ['node', 'swarm', 'fuse']

/**
 * Functions whose job is to report or hand on an error they are given (a call to one counts as
 * logging it). Keep this short: each name here is a place errors go, so it must really report.
 */
const reporters = new Set([
  'reject', // a Promise's reject: the error goes on to the awaiting caller
  'console.error' // the CLI telling its user (the core never prints)
])

/** The callee of a call, as text without `?.`, `!` and `this.`: `this.log?.error` -> `log.error`. */
function calleeText (sf: SourceFile, n: Node): string {
  return n.getText(sf).replace(/\?\./g, '.').replace(/!/g, '').replace(/^this\./, '').replace(/\s+/g, '')
}

/** A logger call: `log`, `x.log`, `xLog`, each optionally `.error` / `.trace`. */
const loggerRe = /(^|\.)(log|[a-z]\w*Log)(\.(error|trace))?$/

function isLogOrReport (sf: SourceFile, n: Node): boolean {
  const callee = calleeText(sf, n)
  return loggerRe.test(callee) || reporters.has(callee)
}

/** Whether the subtree rethrows or logs (a throw inside a nested function does not count). */
function throwsOrLogs (sf: SourceFile, body: Node): boolean {
  let found = false
  const visit = (n: Node): void => {
    if (found) return
    if (n.kind === SyntaxKind.ThrowStatement) { found = true; return }
    if (n.kind === SyntaxKind.CallExpression && isLogOrReport(sf, (n as unknown as { expression: Node }).expression)) { found = true; return }
    if (n !== body && (n.kind === SyntaxKind.FunctionDeclaration || n.kind === SyntaxKind.FunctionExpression ||
      n.kind === SyntaxKind.ArrowFunction || n.kind === SyntaxKind.MethodDeclaration)) return
    n.forEachChild(visit)
  }
  visit(body)
  return found
}

/** Whether `name` (the caught error) is an argument of a call that is a statement, or the handler's body. */
function handsOn (sf: SourceFile, body: Node, name: string | undefined): boolean {
  if (name === undefined) return false
  const mentions = (n: Node): boolean => {
    if (n.kind === SyntaxKind.Identifier && n.getText(sf) === name) return true
    return n.forEachChild(c => mentions(c) ? true : undefined) === true
  }
  const isCall = (n: Node): n is Node & { arguments?: readonly Node[] } => n.kind === SyntaxKind.CallExpression || n.kind === SyntaxKind.NewExpression
  const effect = (n: Node): boolean => {
    let e = n
    while (e.kind === SyntaxKind.AwaitExpression || e.kind === SyntaxKind.VoidExpression) e = (e as unknown as { expression: Node }).expression
    return isCall(e) && (e.arguments ?? []).some(mentions)
  }
  if (body.kind !== SyntaxKind.Block) return effect(body)
  let found = false
  const visit = (n: Node): void => {
    if (found) return
    if (n.kind === SyntaxKind.ExpressionStatement && effect((n as unknown as { expression: Node }).expression)) { found = true; return }
    n.forEachChild(visit)
  }
  visit(body)
  return found
}

/** The name an error is caught as: `catch (err)`, `.catch((err: Error) => ...)`. */
function caughtName (sf: SourceFile, decl: Node | undefined): string | undefined {
  const name = (decl as unknown as { name?: Node } | undefined)?.name
  return name?.kind === SyntaxKind.Identifier ? name.getText(sf) : undefined
}

/** The comments in text[from, to) (scanned as tokens, so `//` inside a string is not one). */
function comments (text: string, from: number, to: number): string[] {
  const out: string[] = []
  const s = createScanner(false, undefined, text, from, to - from)
  for (let k = s.scan(); k !== SyntaxKind.EndOfFile; k = s.scan()) {
    if (k === SyntaxKind.SingleLineCommentTrivia || k === SyntaxKind.MultiLineCommentTrivia) out.push(s.getTokenText())
  }
  return out
}

/** A comment that says something: at least two words of text (`// ignore` alone says no why). */
function says (comment: string): boolean {
  const words = comment.replace(/^\/\/|^\/\*+|\*+\/$/g, '').trim().split(/\s+/).filter(w => /\w/.test(w))
  return words.length >= 2
}

const lineStart = (text: string, pos: number): number => text.lastIndexOf('\n', pos - 1) + 1
const lineEnd = (text: string, pos: number): number => { const e = text.indexOf('\n', pos); return e === -1 ? text.length : e }

/** The comment lines right above the line holding `pos` (for a statement ending in `.catch(...)`). */
function commentsAbove (text: string, pos: number): string[] {
  const out: string[] = []
  let start = lineStart(text, pos)
  while (start > 0) {
    const prev = lineStart(text, start - 1)
    const line = text.slice(prev, start - 1).trim()
    if (!line.startsWith('//') && !line.startsWith('*') && !line.startsWith('/*')) break
    out.push(line)
    start = prev
  }
  return out
}

interface Offence { file: string, line: number, what: string }

function check (sf: SourceFile, rel: string, out: Offence[]): void {
  const text = sf.text
  const lineOf = (pos: number): number => sf.getLineAndCharacterOfPosition(pos).line + 1
  const visit = (n: Node): void => {
    if (n.kind === SyntaxKind.CatchClause) {
      const block = (n as unknown as { block: Node & { statements: readonly Node[] } }).block
      const start = n.getStart(sf)
      // the reason may sit inside the block or after `catch (err) {` on its line
      const reasoned = comments(text, start, n.end).some(says) || comments(text, start, lineEnd(text, start)).some(says)
      if (block.statements.length === 0 && !reasoned) out.push({ file: rel, line: lineOf(start), what: 'empty catch block' })
      else if (!reasoned && !throwsOrLogs(sf, block) &&
        !handsOn(sf, block, caughtName(sf, (n as unknown as { variableDeclaration?: Node }).variableDeclaration))) out.push({ file: rel, line: lineOf(start), what: 'catch neither rethrows, logs nor says why it ignores' })
    } else if (n.kind === SyntaxKind.CallExpression) {
      const call = n as unknown as { expression: Node & { name?: Node }, arguments: readonly Node[] }
      const callee = call.expression
      const method = callee.kind === SyntaxKind.PropertyAccessExpression ? callee.name?.getText(sf) : undefined
      const handler = method === 'catch' ? call.arguments[0] : method === 'then' ? call.arguments[1] : undefined
      if (handler !== undefined && callee.name !== undefined) {
        const at = callee.name.getStart(sf)
        const reasoned = comments(text, handler.getFullStart(), n.end).some(says) ||
          comments(text, n.end, lineEnd(text, n.end)).some(says) ||
          comments(text, lineStart(text, at), lineEnd(text, at)).some(says) ||
          commentsAbove(text, at).some(says)
        let ok = reasoned
        if (!ok) {
          if (handler.kind === SyntaxKind.ArrowFunction || handler.kind === SyntaxKind.FunctionExpression) {
            const fn = handler as unknown as { body: Node, parameters: readonly Node[] }
            ok = throwsOrLogs(sf, fn.body) || handsOn(sf, fn.body, caughtName(sf, fn.parameters[0]))
          } else {
            ok = isLogOrReport(sf, handler) // `.catch(log.error)`, `.catch(reject)`
          }
        }
        if (!ok) out.push({ file: rel, line: lineOf(at), what: `.${method}(${method === 'then' ? '..., ' : ''}${handler.getText(sf).replace(/\s+/g, ' ').slice(0, 40)}) neither rethrows, logs nor says why it ignores` })
      }
    }
    n.forEachChild(visit)
  }
  visit(sf)
}

function * files (dir: string): Generator<string> {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (name === 'node_modules' || name === 'build' || name === 'native') continue
    if (statSync(p).isDirectory()) yield * files(p)
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('.test.ts')) yield p
  }
}

const api = new API({ cwd: root })
const offences: Offence[] = []
let checked = 0
try {
  const project = api.updateSnapshot({ openProject: join(root, 'tsconfig.json') }).getProjects()[0]
  for (const top of rooms) {
    for (const file of files(join(root, top))) {
      const sf = project.program.getSourceFile(file)
      if (sf === undefined) { offences.push({ file: relative(root, file), line: 1, what: 'not in the tsconfig project: cannot check' }); continue }
      checked++
      check(sf, relative(root, file), offences)
    }
  }
} finally {
  api.close()
}

if (offences.length > 0) {
  process.stderr.write(`check-catches: ${offences.length} silent catch(es) (rethrow, log with context, or comment why ignoring is right):\n`)
  for (const o of offences) process.stderr.write(`  ${o.file}:${o.line}: ${o.what}\n`)
  const perFile = new Map<string, number>()
  for (const o of offences) perFile.set(o.file, (perFile.get(o.file) ?? 0) + 1)
  process.stderr.write(`check-catches: ${offences.length} in ${perFile.size} file(s): ${[...perFile].map(([f, n]) => `${f} ${n}`).join(', ')}\n`)
  process.exit(1)
}
process.stdout.write(`check-catches: ok (${checked} files)\n`)
