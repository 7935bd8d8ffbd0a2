import type { EventEmitter } from 'node:events';
import DailyRotateFile from 'winston-daily-rotate-file';
import { filePattern, type StreamName } from '../files.js';
import { LOG_FILE_MODE, type StreamFs } from '../fs-tap.js';

const MESSAGE = Symbol.for('message');

/** What this uses of the transport (its typings mark log/close optional). */
type RotatingTransport = DailyRotateFile & { log(info: object, cb: () => void): void; close(): void; readonly logStream: EventEmitter };

export interface RotatingFileOptions {
  readonly dir: string;
  readonly stream: StreamName;
  readonly instance?: string | undefined;
  /** The file system calls of the write streams (the tap that reports every write). */
  readonly fs: StreamFs;
}

export interface RotatingFileEvents {
  /** The open stream failed (unheard, its error would be thrown and end the process). */
  failed(err: Error): void;
  /** The stream opened the next day's file. */
  newFile(path: string): void;
  rotated(oldFile: string, newFile: string): void;
}

/**
 * A stream's daily files, by winston-daily-rotate-file (UTC days, appended, mode 0640). Only the
 * rotation is the library's: gzip and retention are the sink's (sink.ts says why).
 */
export class RotatingFile {
  private transport: RotatingTransport | undefined;
  /** The file open() opens: the library's 'new' event for it arrives a tick later and is no rotation. */
  private skipFirstNew: string | undefined;

  constructor(
    private readonly opts: RotatingFileOptions,
    private readonly events: RotatingFileEvents,
  ) {}

  /** Opens the stream on `firstPath` (today's file). Throws when the stream cannot be created. */
  open(firstPath: string): void {
    this.skipFirstNew = firstPath;
    this.attach(this.create());
  }

  /**
   * Hands one line to the stream; false when none is open. Throws when the stream refuses it at
   * once (a rotation that cannot create the folder throws from inside write()).
   */
  write(line: string): boolean {
    if (!this.transport) return false;
    this.transport.log({ [MESSAGE]: line }, () => undefined);
    return true;
  }

  /** Lets go of a stream that failed; what it did not write is taken back by the sink. */
  abandon(): void {
    const transport = this.transport;
    this.transport = undefined;
    if (!transport) return;
    try {
      transport.close();
    } catch {
      // the stream is already destroyed; nothing to end
    }
  }

  /** Ends the stream; resolves once its last write is done, or at `deadline` (epoch ms). */
  async close(deadline: number): Promise<void> {
    const transport = this.transport;
    this.transport = undefined;
    if (!transport) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      transport.once('finish', () => {
        clearTimeout(timer);
        resolve();
      });
      transport.close();
    });
  }

  private create(): RotatingTransport {
    return new DailyRotateFile({
      dirname: this.opts.dir,
      filename: filePattern(this.opts.stream, this.opts.instance),
      datePattern: 'YYYY-MM-DD',
      utc: true,
      // Gzip and retention are done by the sink (see its class comment and housekeeping.ts).
      zippedArchive: false,
      eol: '\n',
      options: { flags: 'a', mode: LOG_FILE_MODE, fs: this.opts.fs },
    } as DailyRotateFile.DailyRotateFileTransportOptions) as RotatingTransport;
  }

  private attach(transport: RotatingTransport): void {
    const stream = transport.logStream;
    // Unheard, an error of the file stream would be thrown and end the process.
    stream.on('error', (err: Error) => {
      if (this.transport === transport) this.events.failed(err);
    });
    transport.on('new', (file: string) => {
      if (this.transport !== transport) return;
      if (this.skipFirstNew === file) {
        this.skipFirstNew = undefined;
      } else {
        this.events.newFile(file);
      }
    });
    transport.on('rotate', (oldFile: string, newFile: string) => this.events.rotated(oldFile, newFile));
    this.transport = transport;
  }
}
