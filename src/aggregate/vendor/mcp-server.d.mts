// The types of the module scripts/build-mcp-server-module.mjs builds here: the package's own.
export * from '@modelcontextprotocol/server';
