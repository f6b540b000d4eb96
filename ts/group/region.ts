/**
 * Shared-memory regions for rings: creating one and laying a ring out in it,
 * and the object that owns its descriptor (closed on purpose, or by a
 * backstop when the owner is collected without that).
 */
import { native } from '../native.js';

/** Ring geometry shared by both sides. */
export interface RingGeometry {
  /** Data area bytes (power of two). */
  capacity: number;
  /** Largest record payload; larger messages are fragmented. */
  maxRecord: number;
}

/** Closes the descriptor of a region collected without `closeFd()` (a backstop: closing is the way). */
const regionFds = new FinalizationRegistry<number>((fd) => native().closeFd(fd));

/**
 * A shared-memory region this process created: its mapping (unmapped once `buffer` is
 * collected) and its descriptor, owned here: closed by {@link closeFd}, or when this object is
 * collected. Never close `fd` any other way (the backstop would close the number again).
 */
export class SharedRegion {
  private descriptor: number;

  constructor(
    readonly buffer: ArrayBuffer,
    fd: number,
    readonly len: number,
  ) {
    this.descriptor = fd;
    regionFds.register(this, fd, this);
  }

  /** The descriptor, to hand to a child process; -1 once closed. */
  get fd(): number {
    return this.descriptor;
  }

  /** Closes the descriptor (the mapping stays while `buffer` is reachable). Closing twice is fine. */
  closeFd(): void {
    const fd = this.descriptor;
    if (fd < 0) return;
    this.descriptor = -1;
    regionFds.unregister(this);
    native().closeFd(fd);
  }
}

/** Creates and lays out a ring in a new anonymous shared-memory region. */
export function createRingRegion(geometry: RingGeometry): SharedRegion {
  const n = native();
  const len = n.ringRegionLen(geometry.capacity);
  const { buffer, fd } = n.shmCreate(len);
  try {
    n.ringInit(buffer, geometry.capacity, geometry.maxRecord);
  } catch (err) {
    n.closeFd(fd);
    throw err;
  }
  return new SharedRegion(buffer, fd, len);
}
