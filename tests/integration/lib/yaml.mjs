// A tiny block-style YAML writer for the configs the tests generate: objects,
// arrays, strings (always double-quoted, JSON escapes are valid YAML), numbers,
// booleans and null. Block style keeps line numbers meaningful in sluice's
// config messages.

function scalar(v) {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as YAML`);
        return String(v);
    }
    if (typeof v === 'string') return JSON.stringify(v);
    throw new Error(`cannot write a ${typeof v} as YAML`);
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const key = (k) => (/^[A-Za-z_][A-Za-z0-9_.\-/]*$/.test(k) ? k : JSON.stringify(k));

function inline(v) {
    if (Array.isArray(v) && v.length === 0) return '[]';
    if (isObj(v) && Object.keys(v).length === 0) return '{}';
    if (!Array.isArray(v) && !isObj(v)) return scalar(v);
    return null;
}

function objLines(obj, ind) {
    const out = [];
    for (const [k, v] of Object.entries(obj)) {
        if (v === undefined) continue;
        const s = inline(v);
        if (s !== null) out.push(`${ind}${key(k)}: ${s}`);
        else if (Array.isArray(v)) out.push(`${ind}${key(k)}:`, ...arrLines(v, `${ind}  `));
        else out.push(`${ind}${key(k)}:`, ...objLines(v, `${ind}  `));
    }
    return out;
}

function arrLines(arr, ind) {
    const out = [];
    for (const v of arr) {
        const s = inline(v);
        if (s !== null) {
            out.push(`${ind}- ${s}`);
        } else if (Array.isArray(v)) {
            out.push(`${ind}-`, ...arrLines(v, `${ind}  `));
        } else {
            const lines = objLines(v, `${ind}  `);
            lines[0] = `${ind}- ${lines[0].slice(ind.length + 2)}`;
            out.push(...lines);
        }
    }
    return out;
}

export function toYAML(obj) {
    if (!isObj(obj)) throw new Error('the top level must be a mapping');
    return `${objLines(obj, '').join('\n')}\n`;
}
