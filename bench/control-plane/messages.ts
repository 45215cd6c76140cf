/** What run.ts and the control-plane process say to each other over IPC. */
export type ParentMessage = { readonly type: 'usage' } | { readonly type: 'stop' };

export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'usage'; readonly userMicros: number; readonly systemMicros: number; readonly rssBytes: number };
