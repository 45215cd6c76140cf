/** Who a pod process runs as. */
export interface ProcessUser {
  uid: number;
  gid: number;
}

export const ROOT_USER: ProcessUser = { uid: 0, gid: 0 };
/** The sidecar's identity: iptables exempts this uid's traffic from capture (DESIGN.md, capture modes). */
export const PROXY_USER: ProcessUser = { uid: 1337, gid: 1337 };

export function isRoot(user: ProcessUser): boolean {
  return user.uid === 0 && user.gid === 0;
}
