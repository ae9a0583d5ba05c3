// @ts-check
/**
 * oidc-provider storage in a Map, one per stand-in. The library's own in-memory adapter is shared by
 * every provider in the process (two stacks in one test run would see each other's sessions) and
 * prints a production warning at start; neither fits a throwaway local sign-in provider.
 */

/** @typedef {{ payload: Record<string, any>, expiresAt: number }} Entry */

/** @returns {new (name: string) => object} an adapter class whose instances share this one store */
export function createMemoryAdapter() {
  /** @type {Map<string, Entry>} */
  const store = new Map();
  const key = (/** @type {string} */ model, /** @type {string} */ id) => `${model}:${id}`;
  const live = (/** @type {string} */ k) => {
    const entry = store.get(k);
    if (entry && entry.expiresAt <= Date.now()) store.delete(k);
    return store.get(k)?.payload;
  };
  const findBy = (/** @type {string} */ model, /** @type {string} */ field, /** @type {string} */ value) => {
    for (const [k] of store) {
      if (!k.startsWith(`${model}:`)) continue;
      const payload = live(k);
      if (payload?.[field] === value) return payload;
    }
    return undefined;
  };

  return class MemoryAdapter {
    /** @param {string} model */
    constructor(model) {
      this.model = model;
    }

    /** @param {string} id @param {Record<string, any>} payload @param {number} [expiresIn] seconds */
    async upsert(id, payload, expiresIn) {
      store.set(key(this.model, id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
    }

    /** @param {string} id */
    async find(id) {
      return live(key(this.model, id));
    }

    /** @param {string} uid */
    async findByUid(uid) {
      return findBy(this.model, 'uid', uid);
    }

    /** @param {string} userCode */
    async findByUserCode(userCode) {
      return findBy(this.model, 'userCode', userCode);
    }

    /** @param {string} id */
    async consume(id) {
      const payload = live(key(this.model, id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }

    /** @param {string} id */
    async destroy(id) {
      store.delete(key(this.model, id));
    }

    /** @param {string} grantId */
    async revokeByGrantId(grantId) {
      for (const [k, entry] of store) if (entry.payload.grantId === grantId) store.delete(k);
    }
  };
}
