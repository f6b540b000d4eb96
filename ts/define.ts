/**
 * `defineMessage`: a message class whose properties are typed from their
 * type codes, on top of the plain `class extends Message` form.
 *
 * ```ts
 * const BombMessage = defineMessage('BombMessage', { damage: 'i' }, { packetType: 101 });
 * type BombMessage = InstanceType<typeof BombMessage>;
 * new BombMessage({ damage: 10 }).damage; // number
 * ```
 */
import { Message, type MessageClass, type MessageOptions, type Reliability, schemaOf } from './message.js';

type Scalar<C extends string> = C extends 'q' | 'Q'
  ? bigint
  : C extends '?'
    ? boolean
    : C extends 'c' | 'p' | 'S' | `${number}s`
      ? string
      : C extends `a${infer E}`
        ? Scalar<E>[]
        : number;

/** The TypeScript type of a value of type code `C`. */
export type ValueOf<C> = C extends readonly string[]
  ? { [K in keyof C]: Scalar<C[K] & string> }
  : Scalar<C & string>;

/** The properties of a message defined from `{ name: code }`. */
export type MessageProps<S extends Record<string, string | readonly string[]>> = {
  [K in keyof S]: ValueOf<S[K]>;
};

/** Options of {@link defineMessage}. */
export interface DefineOptions {
  packetType?: number;
  reliability?: Reliability;
  channel?: number;
}

/** A message class built by {@link defineMessage}. */
export interface DefinedMessageClass<S extends Record<string, string | readonly string[]>> {
  new (props?: Partial<MessageProps<S>>, options?: MessageOptions): Message & MessageProps<S>;
  readonly properties: readonly string[];
  readonly types: readonly (string | readonly string[])[];
  readonly packetType?: number;
  readonly messageType: string;
  fromBytes(bytes: Uint8Array): Message & MessageProps<S>;
}

/**
 * Defines a message class named `name` with typed properties from `{ property: typeCode }`, and
 * registers it: a `packetType` outside 101..255 or taken by another class, or a type code tsage
 * does not know, throws here.
 */
export function defineMessage<const S extends Record<string, string | readonly string[]>>(
  name: string,
  schema: S,
  options: DefineOptions = {},
): DefinedMessageClass<S> {
  const cls = class extends Message {
    static override properties = Object.keys(schema);
    static override types = Object.values(schema);
    static override packetType = options.packetType;
    static override messageType = name;
    static override reliability = options.reliability;
    static override channel = options.channel;
  };
  Object.defineProperty(cls, 'name', { value: name });
  // Registered now: a packetType out of range or taken, or a bad type code, throws here, not at first pack.
  schemaOf(cls as unknown as MessageClass);
  return cls as unknown as DefinedMessageClass<S>;
}
