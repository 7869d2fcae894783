// Preloaded (node --require) into check-credentials in its tests, so that the ECS metadata probe can be exercised
// without leaving the machine: requests for the metadata address go to a local stand-in on 127.0.0.1:
// $TEST_METADATA_PORT, and any other connection to a non-loopback address throws.
"use strict";
const http = require("http");
const net = require("net");

const METADATA_ADDRESS = "100.100.100.200";
const port = Number(process.env.TEST_METADATA_PORT);

const request = http.request;
http.request = function (options, ...rest) {
    if (options !== null && typeof options === "object" && (options.host === METADATA_ADDRESS || options.hostname === METADATA_ADDRESS)) {
        options = { ...options, host: "127.0.0.1", hostname: "127.0.0.1", port };
    }
    return request.call(this, options, ...rest);
};

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    const host = first !== null && typeof first === "object" ? first.host : typeof args[1] === "string" ? args[1] : undefined;
    if (host !== undefined && !/^(127\.|::1$|localhost$)/.test(host)) {
        throw new Error(`metadata-preload: refused a connection to ${host}`);
    }
    return connect.apply(this, args);
};
