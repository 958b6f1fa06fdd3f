// A Step is one host change (or one action of the container's init), as data: a title, the manual
// pages behind it, and its sh lines. Titles may show user data: the renderer makes them inert.
import type { Sh } from './sh.js';

export interface Step {
  /** one line: what the step does (rendered through inert(), so it may show user data) */
  title: string;
  /** the manual pages behind it, e.g. 'pivot_root(2), umount(2)' (a constant) */
  man: string;
  lines: Sh[];
}
