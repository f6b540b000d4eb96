/**
 * Reads what a 64-bit little-endian ELF shared object needs of its libraries:
 * the version names of its `.gnu.version_r` (e.g. GLIBC_2.34 from libc.so.6),
 * and whether it still has a symbol table. Enough to check a built addon
 * without binutils.
 */
import { readFileSync } from 'node:fs';

const SHT_SYMTAB = 2;
const SHT_GNU_VERNEED = 0x6ffffffe;

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

export interface ElfNeeds {
  /** Library file name -> version names needed from it. */
  versions: Map<string, string[]>;
  /** Whether a `.symtab` section is present (false once stripped). */
  hasSymtab: boolean;
}

export function elfNeeds(path: string): ElfNeeds {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) {
    throw new Error(`${path} is not a 64-bit little-endian ELF file`);
  }
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)),
      size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
      info: b.readUInt32LE(o + 0x2c),
    });
  }
  const versions = new Map<string, string[]>();
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED);
  if (verneed) {
    const strtab = sections[verneed.link];
    const str = (off: number): string => {
      const start = strtab.offset + off;
      return b.toString('latin1', start, b.indexOf(0, start));
    };
    let vn = verneed.offset;
    for (let i = 0; i < verneed.info; i++) {
      const cnt = b.readUInt16LE(vn + 2);
      const names: string[] = [];
      let aux = vn + b.readUInt32LE(vn + 8);
      for (let j = 0; j < cnt; j++) {
        names.push(str(b.readUInt32LE(aux + 8)));
        aux += b.readUInt32LE(aux + 12);
      }
      versions.set(str(b.readUInt32LE(vn + 4)), names);
      vn += b.readUInt32LE(vn + 12);
    }
  }
  return { versions, hasSymtab: sections.some((s) => s.type === SHT_SYMTAB) };
}

/** Compares dotted version numbers: `2.9` < `2.34`. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
