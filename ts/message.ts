/**
 * Messages: schema'd classes whose declared properties live as plain fields
 * on the instance (`msg.damage`), read and written by pysage-style
 * `getProperty`/`setProperty` and by the compiled codec.
 */
import { type Codec, compileCodec } from './codec.js';
import { InvalidMessageProperty, PacketError, PacketTypeError, WrongMessageTypeSpecified } from './errors.js';
import { parseBytes, parseTypes, type TypeCode } from './types.js';

/** How a message travels over the network (see the network docs). */
export type Reliability =
  | 'unreliable'
  | 'unreliable-sequenced'
  | 'reliable'
  | 'reliable-ordered'
  | 'reliable-sequenced';

/** A message class: `Message` or a subclass of it. */
export type MessageClass<M extends Message = Message> = (new (
  props?: Record<string, unknown>,
  options?: MessageOptions,
) => M) & {
  properties: readonly string[];
  types?: readonly TypeCode[];
  bytes?: readonly string[];
  packetType?: number;
  messageType?: string;
  reliability?: Reliability;
  channel?: number;
};

/** Optional fields of a message other than its properties. */
export interface MessageOptions {
  /** Who sent it: a group name, a peer address (`'ip:port'`), a cluster address (`'group@node'`). */
  sender?: string | null;
  /** Deliver only to the actor with this gid. */
  receiverId?: number | null;
}

/** Names a message property may not take: they are the message's own fields and methods. */
const RESERVED = new Set([
  'sender',
  'receiverId',
  'gid',
  'messageType',
  'constructor',
  'getProperty',
  'setProperty',
  'toBytes',
  'toString',
  'toJSON',
  'valueOf',
  '__proto__',
  '_tid',
]);

/** Everything tsage knows about one message class, computed once. */
export interface Schema {
  readonly cls: MessageClass;
  readonly name: string;
  readonly properties: readonly string[];
  /** Interned id of `name`, used to index subscriber tables. */
  readonly tid: number;
  readonly packetType: number | undefined;
  /** Property name -> index, for validation. */
  readonly index: ReadonlyMap<string, number>;
  /** Sets a new message's properties from the constructor's `props` (all unset when undefined). */
  readonly init: (m: object, props: Record<string, unknown> | undefined) => void;
  /** The compiled codec, built on first use (a local-only class needs no `types`). */
  codec(): Codec;
  /** @internal The class's network channel and reliability (`channel << 3 | reliability`), -1 until first sent. */
  sendParams: number;
}

const typeIds = new Map<string, number>();
const typeNames: string[] = [];

/** The interned id of a message type name. */
export function typeId(name: string): number {
  let id = typeIds.get(name);
  if (id === undefined) {
    id = typeIds.size;
    typeIds.set(name, id);
    typeNames.push(name);
  }
  return id;
}

/** The message type name an interned id stands for. */
export function typeNameOf(id: number): string | undefined {
  return typeNames[id];
}

const SCHEMA = Symbol('tsage.schema');

/**
 * Compiles the property initialiser of a class: plain stores with constant
 * names (one hidden class per message class), and a check that `props` has no
 * property the class does not declare.
 */
function makeInit(name: string, properties: readonly string[]): Schema['init'] {
  const unknown = (k: string): never => {
    throw new InvalidMessageProperty(
      `${name} has no property '${k}' (its properties: ${properties.join(', ') || 'none'})`,
    );
  };
  const keys = properties.map((p) => JSON.stringify(p));
  const body = `
    if (p === undefined) { ${keys.map((k) => `m[${k}] = undefined;`).join(' ')} return; }
    ${keys.map((k) => `m[${k}] = p[${k}];`).join(' ')}
    for (const k in p) { ${keys.length ? `if (${keys.map((k) => `k !== ${k}`).join(' && ')})` : ''} unknown(k); }`;
  return new Function('unknown', `return function init(m, p) {${body}\n};`)(unknown) as Schema['init'];
}
const byPacketType: (Schema | undefined)[] = new Array(256).fill(undefined);
const byName = new Map<string, Schema>();
let nextMessageGid = 0;
/** Message ids, given on first read (see `Message.gid`). */
const gids = new WeakMap<object, number>();

function validateClass(cls: MessageClass, name: string): readonly string[] {
  const props = cls.properties;
  if (!Array.isArray(props)) throw new InvalidMessageProperty(`${name}.properties must be an array of names`);
  const seen = new Set<string>();
  for (const p of props) {
    if (typeof p !== 'string' || p.length === 0) {
      throw new InvalidMessageProperty(
        `${name}.properties holds ${JSON.stringify(p)}: names must be non-empty strings`,
      );
    }
    if (RESERVED.has(p)) {
      throw new InvalidMessageProperty(
        `${name}.properties: '${p}' is reserved by Message; choose another name`,
      );
    }
    if (seen.has(p)) throw new InvalidMessageProperty(`${name}.properties lists '${p}' twice`);
    seen.add(p);
  }
  // Checked at registration, not first pack, so a bad type code fails where the class is first used.
  const types = typesOf(cls, props);
  if (types !== undefined) parseBytes(name, props, parseTypes(name, props, types), cls.bytes);
  else if (cls.bytes !== undefined) {
    throw new WrongMessageTypeSpecified(`${name}.bytes is set but ${name} has no static types`);
  }
  const pt = cls.packetType;
  if (pt !== undefined && pt !== null && !(Number.isInteger(pt) && pt >= 101 && pt <= 255)) {
    throw new PacketTypeError(`${name}.packetType must be an integer from 101 to 255, got ${String(pt)}`);
  }
  return Object.freeze([...props]);
}

/**
 * A class's type codes: its `types`, or none for a class with no properties
 * (pysage's default `types = []`: it packs to its packet-type byte alone).
 */
export function typesOf(cls: MessageClass, properties: readonly string[]): readonly TypeCode[] | undefined {
  return cls.types ?? (properties.length === 0 ? [] : undefined);
}

/** The schema of a message class, compiling (and registering) it on first use. */
export function schemaOf(cls: MessageClass): Schema {
  const own = (cls as any)[SCHEMA] as Schema | undefined;
  if (own !== undefined && own.cls === cls) return own;
  return compileSchema(cls);
}

function compileSchema(cls: MessageClass): Schema {
  const name =
    Object.hasOwn(cls, 'messageType') && typeof cls.messageType === 'string' ? cls.messageType : cls.name;
  if (!name) throw new InvalidMessageProperty('a message class needs a name (or a static messageType)');
  const properties = validateClass(cls, name);
  const index = new Map(properties.map((p, i) => [p, i]));
  const packetType = cls.packetType ?? undefined;
  let codec: Codec | undefined;
  const schema: Schema = {
    cls,
    name,
    properties,
    tid: typeId(name),
    packetType,
    index,
    init: makeInit(name, properties),
    sendParams: -1,
    codec() {
      if (codec === undefined) {
        const types = typesOf(cls, properties);
        if (types === undefined) {
          throw new WrongMessageTypeSpecified(
            `${name} has no static types: a message with properties needs them to be packed`,
          );
        }
        codec = compileCodec(name, properties, types, cls.prototype, cls.bytes);
      }
      return codec;
    },
  };
  if (packetType !== undefined) {
    const taken = byPacketType[packetType];
    if (taken !== undefined && taken.cls !== cls) {
      throw new PacketTypeError(`${name}.packetType ${packetType} is already taken by ${taken.name}`);
    }
    byPacketType[packetType] = schema;
  }
  byName.set(name, schema);
  installSchema(cls, schema);
  return schema;
}

/**
 * Gives a class its schema, and its prototype the two fields dispatch reads on
 * every message (`messageType` and the interned `_tid`). The one place that
 * defines fields on a message class: every class, concrete, ad-hoc or built
 * from another process's announcement, gets them here.
 */
function installSchema(cls: MessageClass, schema: Schema): void {
  Object.defineProperty(cls, SCHEMA, { value: schema, configurable: true });
  Object.defineProperty(cls.prototype, 'messageType', { value: schema.name, configurable: true });
  Object.defineProperty(cls.prototype, '_tid', { value: schema.tid, configurable: true });
}

/**
 * Registers message classes with this process's registry (as constructing or
 * subscribing to them also does). The same class twice is fine; another class
 * with a taken packetType throws {@link PacketTypeError}.
 */
export function registerMessage(...classes: MessageClass[]): void {
  for (const c of classes) schemaOf(c);
}

/** The registered schema for a packet type, if any. */
export function schemaForPacketType(packetType: number): Schema | undefined {
  return byPacketType[packetType];
}

/** The registered schema for a message type name, if any. */
export function schemaForName(name: string): Schema | undefined {
  return byName.get(name);
}

/** A scratch buffer for `toBytes`, grown on demand. */
let scratch = new Uint8Array(4096);
let scratchView = new DataView(scratch.buffer);

/**
 * The base class of every message. Subclasses declare `static properties`
 * (names), and to be packed for groups or the network also `static types`
 * (type codes) and `static packetType` (101..255).
 *
 * ```ts
 * class BombMessage extends Message {
 *   static properties = ['damage'];
 *   static types = ['i'];
 *   static packetType = 101;
 *   declare damage: number;   // optional typed access; use `declare`, not a field initialiser
 * }
 * ```
 */
export class Message {
  static properties: readonly string[] = [];
  static types?: readonly TypeCode[];
  /**
   * The string properties (of codes `c`, `s`, `Ns`, `Np`, `p`, `S`, `as`, or a tuple of them)
   * that decode as a `Uint8Array`, bytes kept exactly (NULs of `Ns` included), as pysage's byte
   * strings are. The others decode as UTF-8 text (`Ns` with its trailing NULs trimmed); either
   * kind packs a string as UTF-8 and a `Uint8Array` as its bytes.
   */
  static bytes?: readonly string[];
  static packetType?: number;
  /** Overrides the type name (the class name by default). */
  static messageType?: string;
  /** Default network reliability of this class. */
  static reliability?: Reliability;
  /** Default network ordering channel of this class (0..31). */
  static channel?: number;

  // Declared, not class fields: the constructor assigns them, and V8 builds
  // instances much faster without a field-definition step.
  /**
   * Who sent the message, as an address to answer: a network peer's `'ip:port'` (pass it to
   * `sendMessage`), the sending group's name, or `'group@node'` in a cluster; `null` for a
   * message queued in this process.
   */
  declare sender: string | null;
  /** When set, only the actor with this gid receives the message. */
  declare receiverId: number | null;
  /**
   * This message's id, unique within the process. It is given when first read, so
   * the many messages nobody asks carry no id and cost nothing for it.
   */
  get gid(): number {
    let g = gids.get(this);
    if (g === undefined) {
      g = ++nextMessageGid;
      gids.set(this, g);
    }
    return g;
  }

  set gid(value: number) {
    gids.set(this, value);
  }
  /** The message's type name: its class name unless the class sets `static messageType`. */
  declare readonly messageType: string;
  /** @internal interned type id */
  declare readonly _tid: number;

  constructor(props?: Record<string, unknown>, options?: MessageOptions) {
    if (options === undefined) {
      this.sender = null;
      this.receiverId = null;
    } else {
      this.sender = options.sender ?? null;
      this.receiverId = options.receiverId ?? null;
    }
    schemaOf(new.target as MessageClass).init(this, props);
  }

  /**
   * The value of a declared property, or `fallback` when it is unset or null. Typed from the
   * class where it declares its fields (`declare damage: number`), `any` otherwise.
   */
  getProperty<K extends DeclaredKey<this>>(name: K, fallback?: this[K]): this[K];
  getProperty<T = any, N extends string = string>(name: Undeclared<this, N>, fallback?: T): T;
  getProperty(name: string, fallback?: unknown): unknown {
    const schema = schemaOf(this.constructor as MessageClass);
    if (!schema.index.has(name)) {
      throw new InvalidMessageProperty(`${schema.name}.getProperty: no property '${name}'`);
    }
    const v = (this as any)[name];
    return v === undefined || v === null ? fallback : v;
  }

  /** Sets a declared property (typed like {@link getProperty}). */
  setProperty<K extends DeclaredKey<this>>(name: K, value: this[K]): this;
  setProperty<N extends string>(name: Undeclared<this, N>, value: unknown): this;
  setProperty(name: string, value: unknown): this {
    const schema = schemaOf(this.constructor as MessageClass);
    if (!schema.index.has(name)) {
      throw new InvalidMessageProperty(`${schema.name}.setProperty: no property '${name}'`);
    }
    (this as any)[name] = value;
    return this;
  }

  /** Packs the message as pysage does: one byte of packetType, then each property in network byte order. */
  toBytes(): Uint8Array {
    const schema = schemaOf(this.constructor as MessageClass);
    if (schema.packetType === undefined) {
      throw new PacketTypeError(`${schema.name} has no static packetType: a message needs one to be packed`);
    }
    const codec = schema.codec();
    for (;;) {
      scratch[0] = schema.packetType;
      const end = codec.encode(this, scratch, scratchView, 1, scratch.length);
      if (end >= 0) return scratch.slice(0, end);
      if (scratch.length >= 64 * 1024 * 1024) {
        throw new PacketError(`${schema.name}: packs to more than ${scratch.length} bytes`);
      }
      scratch = new Uint8Array(scratch.length * 2);
      scratchView = new DataView(scratch.buffer);
    }
  }

  /** Unpacks bytes made by `toBytes` (or by pysage) into a new instance of this class. */
  static fromBytes<M extends Message>(this: new () => M, bytes: Uint8Array): M {
    const schema = schemaOf(this as unknown as MessageClass);
    if (schema.packetType === undefined) {
      throw new PacketTypeError(`${schema.name} has no static packetType: it cannot be unpacked`);
    }
    if (bytes.length < 1) throw new PacketError(`${schema.name}.fromBytes: no bytes`);
    if (bytes[0] !== schema.packetType) {
      throw new PacketTypeError(
        `${schema.name}.fromBytes: bytes have packet type ${bytes[0]}, ${schema.name} is ${schema.packetType}`,
      );
    }
    const m = new this();
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const end = schema.codec().decode(m, bytes, dv, 1, bytes.length);
    if (end !== bytes.length) {
      throw new PacketError(
        `${schema.name}.fromBytes: ${bytes.length - end} bytes left over after the last property`,
      );
    }
    return m;
  }

  toString(): string {
    return `${this.messageType} ${this.gid}`;
  }
}

/** The fields a message class declares beyond Message's own: what `getProperty` is typed by. */
export type DeclaredKey<M> = Exclude<keyof M, keyof Message> & string;
/** A property name the class does not declare a field for (read and written as `any`). */
type Undeclared<M, N extends string> = N extends DeclaredKey<M> ? never : N;

/** Marks Message.prototype, for a check cheaper than `instanceof` on the hot path. */
const BRAND = Symbol('tsage.message');
Object.defineProperty(Message.prototype, BRAND, { value: true });

/** Whether `v` is a Message (any subclass): a brand on the prototype, read in one load. */
export function isMessage(v: unknown): v is Message {
  return typeof v === 'object' && v !== null && (v as { [BRAND]?: boolean })[BRAND] === true;
}

/** Most names interned for classes built from other processes' announcements (an interned id is never freed). */
export const MAX_FOREIGN_NAMES = 65_536;
let foreignNames = 0;

/**
 * A class for a message type this process has no class for, built from another process's
 * announcement. It decodes, and dispatches by name (actors subscribed to the name receive
 * it), but it stays out of the registry: it takes neither a packet type nor a name, so it can
 * never stand in for a class of this process, nor be found by `schemaForName`. Its codec is
 * compiled on first use. Throws {@link PacketTypeError} when this process has a class of that
 * name, or when {@link MAX_FOREIGN_NAMES} names are already interned for such classes, and
 * what the class checks throw for bad property names or type codes.
 */
export function foreignClass(
  name: string,
  properties: readonly string[],
  types: readonly TypeCode[],
  bytes?: readonly string[],
): MessageClass {
  const mine = byName.get(name);
  if (mine !== undefined) {
    throw new PacketTypeError(
      `'${name}' is this process's ${mine.packetType === undefined ? 'local class' : `packet type ${mine.packetType}`}: another process cannot define it`,
    );
  }
  const c = class extends Message {
    static override properties = properties;
    static override types = types;
    static override bytes = bytes;
    static override messageType = name;
  };
  Object.defineProperty(c, 'name', { value: name });
  const props = validateClass(c, name);
  if (!typeIds.has(name)) {
    if (foreignNames >= MAX_FOREIGN_NAMES) {
      throw new PacketTypeError(
        `'${name}': ${MAX_FOREIGN_NAMES} type names of other processes are known already, no more are taken`,
      );
    }
    foreignNames++;
  }
  let codec: Codec | undefined;
  installSchema(c, {
    cls: c,
    name,
    properties: props,
    tid: typeId(name),
    packetType: undefined,
    index: new Map(props.map((p, i) => [p, i])),
    init: makeInit(name, props),
    sendParams: -1,
    codec() {
      codec ??= compileCodec(name, props, types, c.prototype, bytes);
      return codec;
    },
  });
  return c;
}

const adhocClasses = new Map<string, MessageClass>();
const adhocNames = new Set<string>();

/** Whether an ad-hoc message of this type name was made (`triggerToActor(gid, name)`). */
export function isAdhocName(name: string): boolean {
  return adhocNames.has(name);
}

/**
 * A class for an ad-hoc message type that has no concrete class: a bare type
 * name, as pysage's `trigger_to_actor(id, 'SomeName')` allows.
 */
export function adhocClass(name: string, properties: readonly string[] = []): MessageClass {
  const key = `${name}\u0000${properties.join('\u0000')}`;
  let cls = adhocClasses.get(key);
  if (cls === undefined) {
    const c = class extends Message {
      static override properties = properties;
      static override messageType = name;
    };
    cls = c;
    // Ad-hoc classes share their name's type id but stay out of the name registry.
    installSchema(cls, {
      cls,
      name,
      properties,
      tid: typeId(name),
      packetType: undefined,
      index: new Map(properties.map((p, i) => [p, i])),
      init: makeInit(name, properties),
      sendParams: -1,
      codec() {
        throw new PacketTypeError(`ad-hoc message '${name}' has no packetType and cannot be packed`);
      },
    });
    adhocClasses.set(key, cls);
    adhocNames.add(name);
  }
  return cls;
}
