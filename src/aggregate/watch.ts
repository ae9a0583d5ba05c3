/**
 * Change notifications from an aggregate's upstreams, for as long as the client listens: each
 * member's upstream is watched (`subscriptions/listen` on a 2026-07-28 upstream, the GET stream of
 * a 2025 upstream session), and a `notifications/tools/list_changed` (or prompts') from any of
 * them drops that upstream's cached list for the person and is passed on as the aggregate's own. A 2025 upstream without sessions has no stream to watch.
 */
import { linkFor, openConversation, type UpstreamLink, watchUpstream } from '../upstreams';
import type { SessionLinks } from './conversation';
import { forgetList, type ListKind } from './list-cache';
import type { Member } from './members';

const CHANGES: Readonly<Record<string, ListKind>> = {
  'notifications/tools/list_changed': 'tools/list',
  'notifications/prompts/list_changed': 'prompts/list',
  'notifications/resources/list_changed': 'resources/list',
};

export interface WatchOptions {
  email: string;
  /** The client's 2025 session, when it has one: its upstream sessions are the ones watched. */
  sessions: SessionLinks | undefined;
  /** Ends every watch. */
  signal: AbortSignal;
  onChange: (kind: ListKind) => void;
}

/** Watches every member with a credential until `signal` aborts; resolves when every watch is over. */
export async function watchMembers(members: readonly Member[], options: WatchOptions): Promise<void> {
  await Promise.allSettled(members.filter((member) => member.credential).map((member) => watchMember(member, options)));
}

async function watchMember(member: Member, options: WatchOptions): Promise<void> {
  const onMessage = (message: Record<string, unknown>) => {
    const kind = typeof message.method === 'string' && Object.hasOwn(CHANGES, message.method) ? CHANGES[message.method] : undefined;
    if (!kind) return;
    forgetList(kind, member.upstream, options.email);
    // Resources and their templates change together.
    if (kind === 'resources/list') forgetList('resources/templates/list', member.upstream, options.email);
    options.onChange(kind);
  };
  const link: UpstreamLink = { ...linkFor(member.upstream, member.credential?.header), signal: options.signal };
  if (options.sessions) {
    const opening = await options.sessions.open(member);
    if (opening.outcome !== 'open') return;
    link.headers.set('MCP-Protocol-Version', opening.session.revision);
    if (opening.session.sessionId !== undefined) link.headers.set('Mcp-Session-Id', opening.session.sessionId);
    await watchUpstream(link, onMessage);
    return;
  }
  // Opened without the watch's signal, so that ending it (a 2025 session's DELETE) still goes out once the watch is stopped.
  const opened = await openConversation({ ...link, signal: undefined });
  if (opened.outcome !== 'open') return;
  try {
    await watchUpstream({ ...opened.link, signal: options.signal }, onMessage);
  } finally {
    await opened.end();
  }
}

const NOTIFICATIONS: Readonly<Record<ListKind, string>> = {
  'tools/list': 'notifications/tools/list_changed',
  'prompts/list': 'notifications/prompts/list_changed',
  'resources/list': 'notifications/resources/list_changed',
  'resources/templates/list': 'notifications/resources/list_changed',
};

/**
 * A 2025 client session's GET stream: the members' list changes as SSE events, for as long as the
 * client keeps it open (also when no upstream can be watched, so the client does not reconnect in
 * a loop). The client going away stops every watch.
 */
export function changeStream(members: readonly Member[], options: Omit<WatchOptions, 'onChange'>): Response {
  const encoder = new TextEncoder();
  const stopped = new AbortController();
  const signal = AbortSignal.any([options.signal, stopped.signal]);
  let open = true;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        if (open) controller.enqueue(encoder.encode(text));
      };
      // A comment first: the response's headers go out now, not at the first change.
      send(': watching the upstreams for changes\n\n');
      void watchMembers(members, {
        ...options,
        signal,
        onChange: (kind) => send(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: NOTIFICATIONS[kind] })}\n\n`),
      })
        .then(() => (signal.aborted ? undefined : new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))))
        .finally(() => {
          if (!open) return;
          open = false;
          controller.close();
        });
    },
    cancel() {
      open = false;
      stopped.abort();
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' } });
}
