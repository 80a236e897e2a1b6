/**
 * Minimal typings for the parts of express 5 and express-session 1.19 the benchmark servers use
 * (the project does not depend on `@types/express` / `@types/express-session`; delete this file if it ever does).
 */

declare module "express" {
  import type { IncomingMessage, Server, ServerResponse } from "node:http"
  import type { Session } from "express-session"

  export interface Request extends IncomingMessage {
    readonly params: Record<string, string>
    session: Session
  }
  export interface Response extends ServerResponse {
    send(body: string): this
    json(body: unknown): this
  }
  export type NextFunction = (err?: unknown) => void
  export type Handler = (req: Request, res: Response, next: NextFunction) => void
  export interface Application {
    disable(setting: string): this
    use(handler: Handler): this
    get(path: string, handler: Handler): this
    listen(port: number, host: string, callback: () => void): Server
  }
  export default function express(): Application
}

declare module "express-session" {
  import type { Handler } from "express"

  export interface SessionData {
    [key: string]: unknown
  }
  export interface Session extends SessionData {
    regenerate(callback: (err?: unknown) => void): void
    destroy(callback: (err?: unknown) => void): void
  }
  export class Store {}
  export interface SessionOptions {
    readonly secret: string
    readonly store: Store
    readonly resave: boolean
    readonly saveUninitialized: boolean
  }
  export default function session(options: SessionOptions): Handler
}
