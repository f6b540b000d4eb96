/**
 * `defineMessage`: a message class whose properties are typed from their
 * type codes, on top of the plain `class extends Message` form. The class is
 * registered as it is defined, as pysage's metaclass registers its classes: a
 * packet type already taken is reported here, and an ad-hoc message of its
 * name is refused from then on.
 *
 * ```ts
 * const BombMessage = defineMessage('BombMessage', { damage: 'i' }, { packetType: 101 });
 * type BombMessage = InstanceType<typeof BombMessage>;
 * new BombMessage({ damage: 10 }).damage; // number
 * const Blob = defineMessage('Blob', { data: 'S' }, { packetType: 102, bytes: ['data'] });
 * new Blob({ data: new Uint8Array([0, 255]) }).data; // Uint8Array
 * ```
 */
import { Message, type MessageClass, type MessageOptions, type Reliability, schemaOf } from './message.js';

/** A string type code: its values are text, or bytes for a property in `bytes`. */
type StringCode = 'c' | 's' | 'p' | 'S' | `${number}s` | `${number}p`;

/** What a string code holds: as read, text (or bytes for a property in `bytes`); as given to pack, either. */
type Str<B extends boolean, In extends boolean> = In extends true
  ? string | Uint8Array
  : B extends true
    ? Uint8Array
    : string;

type Scalar<C extends string, B extends boolean, In extends boolean> = C extends 'q' | 'Q'
  ? bigint
  : C extends '?'
    ? boolean
    : C extends StringCode
      ? Str<B, In>
      : C extends `a${infer E}`
        ? Scalar<E, B, In>[]
        : number;

/**
 * The TypeScript type of a value of type code `C` (`B`: the property decodes its strings as
 * bytes; `In`: the type accepted for packing, where every string code also takes a `Uint8Array`).
 */
export type ValueOf<C, B extends boolean = false, In extends boolean = false> = C extends readonly string[]
  ? { [K in keyof C]: Scalar<C[K] & string, B, In> }
  : Scalar<C & string, B, In>;

/** The properties of a message defined from `{ name: code }`, those named in `B` holding bytes. */
export type MessageProps<S extends Record<string, string | readonly string[]>, B extends string = never> = {
  [K in keyof S]: ValueOf<S[K], K extends B ? true : false>;
};

/** What the constructor of such a message takes: every string property may also be given bytes. */
export type MessageInput<S extends Record<string, string | readonly string[]>, B extends string = never> = {
  [K in keyof S]: ValueOf<S[K], K extends B ? true : false, true>;
};

/** Options of {@link defineMessage}. */
export interface DefineOptions<B extends string = string> {
  packetType?: number;
  reliability?: Reliability;
  channel?: number;
  /** String properties that decode as `Uint8Array`, bytes kept exactly (see `Message.bytes`). */
  bytes?: readonly B[];
}

/** A message class built by {@link defineMessage}. */
export interface DefinedMessageClass<
  S extends Record<string, string | readonly string[]>,
  B extends string = never,
> {
  new (props?: Partial<MessageInput<S, B>>, options?: MessageOptions): Message & MessageProps<S, B>;
  readonly properties: readonly string[];
  readonly types: readonly (string | readonly string[])[];
  readonly bytes?: readonly string[];
  readonly packetType?: number;
  readonly messageType: string;
  fromBytes(bytes: Uint8Array): Message & MessageProps<S, B>;
}

/**
/**
 * Defines a message class named `name` with typed properties from `{ property: typeCode }`, and
 * registers it: a `packetType` outside 101..255 or taken by another class (`PacketTypeError`), or a
 * type code or `bytes` entry tsage cannot take (`WrongMessageTypeSpecified`), throws here.
 */
export function defineMessage<
  const S extends Record<string, string | readonly string[]>,
  const B extends keyof S & string = never,
>(name: string, schema: S, options: DefineOptions<B> = {}): DefinedMessageClass<S, B> {
  const cls = class extends Message {
    static override properties = Object.keys(schema);
    static override types = Object.values(schema);
    static override bytes = options.bytes;
    static override packetType = options.packetType;
    static override messageType = name;
    static override reliability = options.reliability;
    static override channel = options.channel;
  };
  Object.defineProperty(cls, 'name', { value: name });
  // Registered now: a packetType out of range or taken, or a bad type code, throws here, not at first pack.
  schemaOf(cls as unknown as MessageClass);
  return cls as unknown as DefinedMessageClass<S, B>;
}
