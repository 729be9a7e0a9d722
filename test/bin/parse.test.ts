import { describe, expect, it } from "@effect/vitest"
import * as Parse from "../../src/bin/parse.ts"

describe("CLI value parsers", () => {
  it("reads Go-style and Effect-style durations as milliseconds", () => {
    expect(Parse.duration("2s")).toBe(2000)
    expect(Parse.duration("250ms")).toBe(250)
    expect(Parse.duration("1m30s")).toBe(90_000)
    expect(Parse.duration("1h")).toBe(3_600_000)
    expect(Parse.duration("1.5s")).toBe(1500)
    expect(Parse.duration("500us")).toBe(0.5)
    expect(Parse.duration("5 seconds")).toBe(5000)
    expect(Parse.duration("100")).toBe(100)
    expect(Parse.duration("0")).toBe(0)
    for (const bad of ["soon", "-1s", "5 parsecs", "", "s"]) expect(Parse.duration(bad), bad).toBeUndefined()
  })

  it("reads byte sizes", () => {
    expect(Parse.byteSize("1048576")).toBe(1 << 20)
    expect(Parse.byteSize("16MiB")).toBe(1 << 24)
    expect(Parse.byteSize("64kb")).toBe(64_000)
    expect(Parse.byteSize("1 KiB")).toBe(1024)
    for (const bad of ["big", "-1", "1.5 parsec"]) expect(Parse.byteSize(bad), bad).toBeUndefined()
  })

  it("splits HOST:PORT, with brackets for IPv6", () => {
    expect(Parse.address("127.0.0.1:7701")).toEqual({ host: "127.0.0.1", port: 7701 })
    expect(Parse.address("[::1]:80")).toEqual({ host: "::1", port: 80 })
    expect(Parse.address(":9")).toEqual({ host: "127.0.0.1", port: 9 })
    for (const bad of ["nope", "host:99999", "host:"]) expect(Parse.address(bad), bad).toBeUndefined()
  })
})
