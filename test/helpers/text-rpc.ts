// A test rpc protocol's parts whose messages are `{ text }` (test/node/rpc-*.test.ts): its
// malformed-message error, the check, and the definition's fields but its id.
import { RpcProtocolError } from '../../node/net/rpc.ts'

export class TextProtocolError extends RpcProtocolError {
  override readonly name = 'TextProtocolError'
}

/** `{ text: string }` or TextProtocolError. */
export const text = (v: unknown): { text: string } => {
  const t = (v as { text?: unknown } | null)?.text
  if (typeof t !== 'string') throw new TextProtocolError('expected { text }')
  return { text: t }
}

/** The fields of a `{ text }` request/reply protocol (1 MiB messages) but its id. */
export const textDef = (timeoutMs: number): { maxMessageBytes: number, timeoutMs: number, malformed: typeof TextProtocolError, request: typeof text, reply: typeof text } =>
  ({ maxMessageBytes: 1 << 20, timeoutMs, malformed: TextProtocolError, request: text, reply: text })
