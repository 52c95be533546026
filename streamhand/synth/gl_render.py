"""OpenGL rasterisation of skinned hand meshes (moderngl, headless: EGL where there is no display).

One context per process (made on first use, again after a fork). A frame is drawn in two passes: a shadow
map from the key light, then the hands with skin shading -- per-channel wrapped diffuse for light scattered
under the skin, Fresnel specular (sharper on nails and metal), a hemisphere ambient and a fill light -- and
procedural detail from the template's rest coordinates: flexion creases and palm lines, darker knuckles,
pinker fingertips, mottling, nails, and now and then a sleeve, a watch or a ring. The frame is supersampled
and returns colour with coverage (for compositing over a scene), camera-frame depth, normals and hand ids.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from streamhand.geometry import Intrinsics, project
from streamhand.synth.hand_mesh import template

_VS = """
#version 330
uniform mat4 proj;
uniform mat4 light_vp;
uniform float sleeve_start;   // metres below the wrist where a sleeve begins (large: none)
uniform float watch;          // 1: a watch at the wrist
uniform float ring;           // 1: a ring on the ring finger
in vec3 in_pos;
in vec3 in_nrm;
in vec3 in_rest;
in vec4 in_attr;              // part, along, nail, side
in float in_ao;               // how open the vertex is to the room's light (1: nothing of the hand in front)
out vec3 v_pos;
out vec3 v_nrm;
out vec3 v_rest;
out vec4 v_attr;
out vec4 v_light;
out float v_ao;
void main() {
    float part = in_attr.x, along = in_attr.y;
    float puff = 0.0;
    if (part < 0.5 && along < -sleeve_start) puff = 0.006 * clamp((-sleeve_start - along) / 0.01, 0.0, 1.0);
    if (watch > 0.5 && part < 0.5 && along < -0.022 && along > -0.042) puff = max(puff, 0.0035);
    if (ring > 0.5 && abs(part - 10.0) < 0.5 && along > 0.28 && along < 0.40) puff = max(puff, 0.0013);
    vec3 p = in_pos + in_nrm * puff;
    v_pos = p;
    v_nrm = in_nrm;
    v_rest = in_rest;
    v_attr = in_attr;
    v_ao = in_ao;
    v_light = light_vp * vec4(p, 1.0);
    gl_Position = proj * vec4(p, 1.0);
}
"""

_FS = """
#version 330
uniform vec3 skin;            // linear RGB 0-1
uniform vec3 key_dir;         // toward the key light, camera frame
uniform vec3 key_col;
uniform vec3 fill_dir;
uniform vec3 fill_col;
uniform vec3 sky_col;
uniform vec3 ground_col;
uniform float sss;            // 0-1, how much light scatters under the skin
uniform float gloss;          // skin specular strength
uniform float shadow_soft;    // PCF radius in texels
uniform float hand_id;
uniform float sleeve_start;
uniform vec3 sleeve_col;
uniform float watch;
uniform vec3 strap_col;
uniform float ring;
uniform vec3 metal_col;
uniform float detail;         // 0-1: strength of creases and lines
uniform sampler2D shadow_map;
in vec3 v_pos;
in vec3 v_nrm;
in vec3 v_rest;
in vec4 v_attr;
in vec4 v_light;
in float v_ao;
layout(location = 0) out vec4 out_col;
layout(location = 1) out vec4 out_geo;
layout(location = 2) out vec4 out_id;

float hash(vec3 p) { p = fract(p * 0.3183099 + 0.1); p *= 17.0; return fract(p.x * p.y * p.z * (p.x + p.y + p.z)); }
float vnoise(vec3 x) {
    vec3 i = floor(x); vec3 f = fract(x); f = f * f * (3.0 - 2.0 * f);
    float a = mix(mix(hash(i), hash(i + vec3(1, 0, 0)), f.x),
                  mix(hash(i + vec3(0, 1, 0)), hash(i + vec3(1, 1, 0)), f.x), f.y);
    float b = mix(mix(hash(i + vec3(0, 0, 1)), hash(i + vec3(1, 0, 1)), f.x),
                  mix(hash(i + vec3(0, 1, 1)), hash(i + vec3(1, 1, 1)), f.x), f.y);
    return mix(a, b, f.z);
}
float seg_dist(vec2 p, vec2 a, vec2 b) {
    vec2 pa = p - a, ba = b - a; float h = clamp(dot(pa, ba) / dot(ba, ba), 0.0, 1.0); return length(pa - ba * h);
}
float line(float d, float w) { return exp(-(d * d) / (w * w)); }
float shadow() {
    vec3 c = v_light.xyz / v_light.w * 0.5 + 0.5;
    if (c.x < 0.0 || c.x > 1.0 || c.y < 0.0 || c.y > 1.0 || c.z > 1.0) return 1.0;
    vec2 texel = 1.0 / vec2(textureSize(shadow_map, 0));
    float lit = 0.0, n = 0.0;
    for (int y = -1; y <= 1; y++) for (int x = -1; x <= 1; x++) {
        vec2 o = vec2(x, y) * shadow_soft * texel;
        lit += (c.z - 0.004 > texture(shadow_map, c.xy + o).r) ? 0.0 : 1.0; n += 1.0;
    }
    return lit / n;
}
void main() {
    vec3 N = normalize(v_nrm);
    vec3 V = normalize(-v_pos);
    if (dot(N, V) < 0.0) N = -N;
    float part = v_attr.x, along = v_attr.y, nail = v_attr.z, side = v_attr.w;
    vec3 rp = v_rest;
    vec3 base = skin;
    // palms and finger pads are lighter, pinker and less saturated than the back (far lighter on dark skin, which
    // holds its melanin on the back), the backs of joints redder and darker
    float palmar = smoothstep(-0.15, 0.6, side);
    float dark_skin = clamp(1.0 - dot(skin, vec3(0.3, 0.59, 0.11)) / 0.45, 0.0, 1.0);
    vec3 palm_col = base * vec3(1.15, 1.0, 0.92) + vec3(0.03, 0.02, 0.02);
    palm_col = mix(palm_col, vec3(0.55, 0.33, 0.25), 0.55 * dark_skin);
    base = mix(base, palm_col, 0.8 * palmar);
    float mott = vnoise(rp * 260.0) * 0.6 + vnoise(rp * 70.0) * 0.4;
    base *= 0.93 + 0.14 * mott;
    float fingertip = (part > 0.5 && mod(part - 1.0, 3.0) > 1.5) ? clamp((along - 0.45) / 0.5, 0.0, 1.0) : 0.0;
    base = mix(base, base * vec3(1.08, 0.86, 0.84), 0.45 * fingertip);
    float dark = 0.0;
    if (part > 0.5) {
        float dorsal = clamp(-side, 0.0, 1.0);
        base = mix(base, base * vec3(1.0, 0.85, 0.82), 0.35 * dorsal * line(along, 0.12));
        // flexion creases across the palmar side at the joints, knuckle wrinkles on the back
        float crease = 1.5 * line(along - 0.035, 0.035) + 1.2 * line(along - 0.96, 0.03);
        if (part > 1.5) dark += palmar * crease * step(0.3, side);
        dark += dorsal * 0.5 * line(along - 0.06, 0.05) * (0.5 + 0.5 * sin(along * 420.0));
        dark *= 1.0 - nail;
    } else if (palmar > 0.2 && along > 0.0) {
        vec2 q = rp.xy;
        // palm lines (life, head, heart) as two segments each, in the template's palm coordinates: deep enough to
        // see at the size a detector reads a hand (without them MediaPipe took a palm for a back: renderer 7)
        float dl = min(seg_dist(q, vec2(0.030, 0.066), vec2(0.017, 0.040)),
                       seg_dist(q, vec2(0.017, 0.040), vec2(0.020, 0.012)));
        float dh = min(seg_dist(q, vec2(0.031, 0.060), vec2(0.000, 0.050)),
                       seg_dist(q, vec2(0.000, 0.050), vec2(-0.034, 0.043)));
        float dt = min(seg_dist(q, vec2(-0.044, 0.060), vec2(-0.005, 0.066)),
                       seg_dist(q, vec2(-0.005, 0.066), vec2(0.018, 0.078)));
        float dw = abs(along - 0.004);
        dark += palmar * 1.5 * (line(dl, 0.0022) + line(dh, 0.0018) + line(dt, 0.0018) + 0.8 * line(dw, 0.0025));
    }
    // as dark as a webcam shows them: darker (0.6, renderer 9) cost MediaPipe's palm detector hands, and much fainter
    // (0.2) its handedness (renderer 10)
    base *= 1.0 - 0.4 * detail * clamp(dark, 0.0, 1.0);
    float spec_pow = 28.0, spec_k = gloss;
    // nails: pale pink plate, whiter free edge
    vec3 nail_col = mix(vec3(0.82, 0.56, 0.52), vec3(0.95, 0.90, 0.86), clamp((along - 0.9) / 0.08, 0.0, 1.0));
    base = mix(base, nail_col * (0.6 + 0.4 * skin / max(max(skin.r, skin.g), 0.01)), nail);
    spec_pow = mix(spec_pow, 110.0, nail); spec_k = mix(spec_k, 0.3, nail);
    float wrap_k = sss;
    if (part < 0.5 && along < -sleeve_start) {
        float weave = 0.85 + 0.15 * vnoise(rp * 900.0) * vnoise(rp * vec3(300.0, 40.0, 300.0));
        base = sleeve_col * weave; spec_k = 0.02; spec_pow = 8.0; wrap_k = 0.1;
    }
    if (watch > 0.5 && part < 0.5 && along < -0.022 && along > -0.042) {
        bool face = side < -0.55 && abs(rp.x) < 0.016;
        base = face ? vec3(0.05, 0.05, 0.06) : strap_col;
        spec_k = face ? 0.6 : 0.08; spec_pow = face ? 200.0 : 20.0; wrap_k = 0.0;
    }
    if (ring > 0.5 && abs(part - 10.0) < 0.5 && along > 0.28 && along < 0.40) {
        base = metal_col * 0.5; spec_k = 0.9; spec_pow = 90.0; wrap_k = 0.0;
    }
    vec3 wrap = wrap_k * vec3(0.55, 0.28, 0.22);
    float sh = shadow();
    float ndl = dot(N, key_dir);
    vec3 diff_key = clamp((vec3(ndl) + wrap) / (1.0 + wrap), 0.0, 1.0);
    diff_key *= mix(vec3(sh), vec3(1.0), wrap_k * 0.25 * vec3(1.0, 0.35, 0.25));  // light bleeds into shadow
    vec3 diff_fill = clamp((vec3(dot(N, fill_dir)) + wrap) / (1.0 + wrap), 0.0, 1.0);
    vec3 up = vec3(0.0, -1.0, 0.0);
    vec3 amb = mix(ground_col, sky_col, 0.5 + 0.5 * dot(N, up));
    float ao = 0.75 + 0.25 * clamp(dot(N, V) * 1.5, 0.0, 1.0);
    vec3 H = normalize(key_dir + V);
    float fres = 0.04 + 0.96 * pow(1.0 - clamp(dot(H, V), 0.0, 1.0), 5.0);
    // the sheen twice renderer 10's (renderer 11)
    float spec = spec_k * fres * 12.0 * pow(clamp(dot(N, H), 0.0, 1.0), spec_pow) * sh * step(0.0, ndl);
    // the hand's own cavities: the room's light (fill, ambient) blocked, the key light in part
    // the room's ambient light at half renderer 8's share: that balance was set while the key light was missing
    // (renderer 9), and with the key light at work MediaPipe finds more hands with less of it (renderer 11)
    vec3 col = base * (diff_key * mix(1.0, v_ao, 0.8) * key_col + (diff_fill * fill_col + 0.5 * amb * ao) * v_ao)
               + spec * key_col;
    // skin turning away from the camera darkens toward the outline, as real skin does (the light scattered under
    // it leaves sideways): MediaPipe's palm detector takes the hand for one more readily (renderer 10)
    out_col = vec4(col * (0.7 + 0.3 * clamp(dot(N, V) * 1.5, 0.0, 1.0)), 1.0);
    out_geo = vec4(v_pos.z, N);
    out_id = vec4(hand_id, 0.0, 0.0, 1.0);
}
"""

_RESOLVE_VS = """
#version 330
in vec2 in_xy;
void main() { gl_Position = vec4(in_xy, 0.0, 1.0); }
"""
_RESOLVE_FS = """
#version 330
uniform sampler2D col_tex;
uniform sampler2D geo_tex;
uniform sampler2D id_tex;
uniform int ss;
layout(location = 0) out vec4 out_col;   // sRGB 0-1 premultiplied by coverage, coverage
layout(location = 1) out vec4 out_geo;   // the nearest covered sample's depth and normal
layout(location = 2) out vec4 out_id;    // its hand, where at least half the samples are covered
void main() {
    ivec2 base = ivec2(gl_FragCoord.xy) * ss;
    vec4 acc = vec4(0.0);
    vec4 geo = vec4(0.0);
    vec4 id = vec4(0.0);
    float zbest = 1e30;
    for (int y = 0; y < ss; y++) for (int x = 0; x < ss; x++) {
        vec4 c = texelFetch(col_tex, base + ivec2(x, y), 0);
        acc += vec4(pow(clamp(c.rgb, 0.0, 1.0), vec3(1.0 / 2.2)) * c.a, c.a);
        vec4 g = texelFetch(geo_tex, base + ivec2(x, y), 0);
        if (c.a > 0.5 && g.x < zbest) {
            zbest = g.x; geo = g; id = texelFetch(id_tex, base + ivec2(x, y), 0);
        }
    }
    out_col = acc / float(ss * ss);
    out_geo = geo;
    out_id = out_col.a >= 0.5 ? id : vec4(0.0);
}
"""

_SHADOW_VS = """
#version 330
uniform mat4 light_vp;
in vec3 in_pos;
void main() { gl_Position = light_vp * vec4(in_pos, 1.0); }
"""
_SHADOW_FS = """
#version 330
void main() {}
"""


@dataclass
class HandLook:
    """How one hand looks: skin (sRGB 0-255), accessories, and the amount of procedural detail."""

    skin: np.ndarray
    sleeve_start: float = 10.0  # metres below the wrist; >= 1: bare forearm
    sleeve_col: np.ndarray = field(default_factory=lambda: np.array([60.0, 70, 90]))
    watch: bool = False
    strap_col: np.ndarray = field(default_factory=lambda: np.array([30.0, 25, 20]))
    ring: bool = False
    metal_col: np.ndarray = field(default_factory=lambda: np.array([230.0, 190, 120]))
    detail: float = 1.0


@dataclass
class Lighting:
    """Lights in the camera frame: a key light that casts shadows, a fill light and a hemisphere."""

    key_dir: np.ndarray  # unit, toward the light
    key_col: np.ndarray  # linear RGB
    fill_dir: np.ndarray
    fill_col: np.ndarray
    sky_col: np.ndarray
    ground_col: np.ndarray
    shadow_soft: float = 2.0  # PCF radius in shadow-map texels (large: soft shadows)
    sss: float = 0.6
    gloss: float = 0.06


@dataclass
class Raster:
    """A supersampled frame, resolved: ``color`` (H, W, 3) sRGB-ish 0-255 float32 premultiplied by
    ``coverage`` (H, W) 0-1; ``z`` (H, W) camera depth in metres (inf off the hands), ``normal`` (H, W, 3),
    ``hand`` (H, W) uint8 (0 none, i + 1 hand i)."""

    color: np.ndarray
    coverage: np.ndarray
    z: np.ndarray
    normal: np.ndarray
    hand: np.ndarray


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return (np.asarray(c, np.float64) / 255.0) ** 2.2


def projection(k: Intrinsics, near: float, far: float) -> np.ndarray:
    """OpenGL clip matrix (row-major) of OpenCV intrinsics: camera frame (x right, y down, z forward) to clip
    space, image row 0 at the top of the viewport."""
    w, h = k.width, k.height
    return np.array([
        [2 * k.fx / w, 0, 2 * (k.cx + 0.5) / w - 1, 0],
        [0, -2 * k.fy / h, 1 - 2 * (k.cy + 0.5) / h, 0],
        [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
        [0, 0, 1, 0],
    ])  # fmt: skip


def light_matrix(direction: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Orthographic clip matrix of a light shining along ``-direction`` onto a sphere (centre, radius)."""
    f = -direction / np.linalg.norm(direction)
    up = np.array([0.0, 1.0, 0.0]) if abs(f[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    r = np.cross(up, f)
    r /= np.linalg.norm(r)
    u = np.cross(f, r)
    view = np.eye(4)
    view[:3, :3] = np.stack([r, u, f])
    view[:3, 3] = -view[:3, :3] @ (centre - f * 2 * radius)
    ortho = np.diag([1 / radius, 1 / radius, 2 / (4 * radius), 1.0])
    ortho[2, 3] = -1.0
    return ortho @ view


#: the largest box (pixels) drawn with 2 x 2 supersampling when the caller leaves it to the renderer
SUPERSAMPLE_AREA = 200 * 200


class GLRenderer:
    """The process's OpenGL context, programs and the template's buffers."""

    SHADOW_SIZES = (256, 512, 1024)

    def __init__(self) -> None:
        import moderngl

        self.pid = os.getpid()
        self.ctx = _context(moderngl)
        self.prog = self.ctx.program(vertex_shader=_VS, fragment_shader=_FS)
        self.shadow_prog = self.ctx.program(vertex_shader=_SHADOW_VS, fragment_shader=_SHADOW_FS)
        t = template()
        static = np.concatenate([t.vertices, np.stack([t.part, t.along, t.nail, t.side], 1)], 1)
        self.n_vertices = len(t.vertices)
        self.static = self.ctx.buffer(static.astype("f4").tobytes())
        self.dynamic = self.ctx.buffer(reserve=self.n_vertices * 28, dynamic=True)
        self.index = self.ctx.buffer(t.faces.astype("i4").tobytes())
        self.vao = self.ctx.vertex_array(
            self.prog,
            [(self.dynamic, "3f 3f 1f", "in_pos", "in_nrm", "in_ao"), (self.static, "3f 4f", "in_rest", "in_attr")],
            self.index,
        )
        self.shadow_vao = self.ctx.vertex_array(self.shadow_prog, [(self.dynamic, "3f 16x", "in_pos")], self.index)
        self._shadow: dict[int, tuple] = {}
        self.resolve_prog = self.ctx.program(vertex_shader=_RESOLVE_VS, fragment_shader=_RESOLVE_FS)
        tri = np.array([-1, -1, 3, -1, -1, 3], "f4")
        self.resolve_vao = self.ctx.vertex_array(self.resolve_prog, [(self.ctx.buffer(tri.tobytes()), "2f", "in_xy")])
        self._sizes: dict[str, tuple[int, int]] = {}
        self._fbos: dict[str, tuple] = {}

    def _targets(self, name: str, w: int, h: int, depth: bool):
        """A framebuffer of three float RGBA textures (and a depth buffer) of at least w x h (sizes rounded up to
        128 pixels, so that boxes of about one size reuse one), kept until a larger one is needed."""
        have = self._sizes.get(name, (0, 0))
        if have[0] < w or have[1] < h:
            w, h = max(have[0], -(-w // 128) * 128), max(have[1], -(-h // 128) * 128)
            for obj in self._fbos.get(name, ()):
                obj.release()
            texs = [self.ctx.texture((w, h), 4, dtype="f4") for _ in range(3)]
            extra = [self.ctx.depth_renderbuffer((w, h))] if depth else []
            fbo = self.ctx.framebuffer(color_attachments=texs, depth_attachment=extra[0] if depth else None)
            self._fbos[name] = (fbo, *texs, *extra)
            self._sizes[name] = (w, h)
        return self._fbos[name]

    def draw(self, k: Intrinsics, meshes: list[tuple[np.ndarray, ...]], looks: list[HandLook],
             light: Lighting, ss: int | None = None) -> Raster:  # fmt: skip
        """Rasterise posed meshes (camera-frame vertices and normals, each (V, 3), and optionally how open each
        vertex is to the room's light (V,), 1 if not given or None) at ``ss`` x ``ss``
        supersampling and resolve to ``k``'s size. Only the hands' bounding box is drawn and read back.
        ``ss`` None: 2 for boxes up to :data:`SUPERSAMPLE_AREA` pixels, 1 above (where a pixel of edge matters
        less and fragments cost the most)."""
        import moderngl

        ctx = self.ctx
        empty = Raster(np.zeros((k.height, k.width, 3), np.float32), np.zeros((k.height, k.width), np.float32),
                       np.full((k.height, k.width), np.inf, np.float32), np.zeros((k.height, k.width, 3), np.float32),
                       np.zeros((k.height, k.width), np.uint8))  # fmt: skip
        allv = np.concatenate([m[0] for m in meshes]) if meshes else np.zeros((0, 3), np.float32)
        box = _pixel_box(allv, k)
        if box is None:
            return empty
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        if ss is None:
            ss = 2 if bw * bh <= SUPERSAMPLE_AREA else 1
        w, h = bw * ss, bh * ss
        kk = Intrinsics(w, h, k.fx * ss, k.fy * ss, (k.cx - x0 + 0.5) * ss - 0.5, (k.cy - y0 + 0.5) * ss - 0.5)
        zmin = max(float(allv[:, 2].min()) * 0.5, 0.01)
        zmax = float(allv[:, 2].max()) * 1.5 + 0.1
        centre = 0.5 * (allv.min(0) + allv.max(0))
        radius = float(np.linalg.norm(allv.max(0) - allv.min(0))) * 0.5 + 0.01
        lvp = light_matrix(np.asarray(light.key_dir, np.float64), centre, radius)
        proj = projection(kk, zmin, zmax)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        # shadow pass, at about the resolution the hands are drawn with
        size = next((s for s in self.SHADOW_SIZES if s >= max(w, h)), self.SHADOW_SIZES[-1])
        if size not in self._shadow:
            tex = ctx.depth_texture((size, size))
            # read as depths (the shader compares them itself): moderngl turns a depth texture's comparison mode
            # on, and a sampler2D reading a texture in that mode is undefined (Mesa: 0, every point in shadow)
            tex.compare_func = ""
            self._shadow[size] = (tex, ctx.framebuffer(depth_attachment=tex))
        shadow_tex, shadow_fbo = self._shadow[size]
        shadow_fbo.use()
        shadow_fbo.clear(depth=1.0)
        self.shadow_prog["light_vp"].write(lvp.T.astype("f4").tobytes())
        data = [np.concatenate([m[0], m[1], np.ones((len(m[0]), 1)) if len(m) < 3 or m[2] is None else m[2][:, None]],
                               1).astype("f4").tobytes() for m in meshes]  # fmt: skip
        for d in data:
            self.dynamic.write(d)
            self.shadow_vao.render(moderngl.TRIANGLES)
        # main pass into the box
        fbo, *texs = self._targets("main", w, h, True)[:4]
        fbo.use()
        fbo.viewport = (0, 0, w, h)
        ctx.scissor = (0, 0, w, h)
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0, viewport=(0, 0, w, h))
        p = self.prog
        p["proj"].write(proj.T.astype("f4").tobytes())
        p["light_vp"].write(lvp.T.astype("f4").tobytes())
        shadow_tex.use(0)
        p["shadow_map"].value = 0
        for name in ("key_dir", "fill_dir"):
            v = np.asarray(getattr(light, name), np.float64)
            p[name].value = tuple(float(x) for x in v / np.linalg.norm(v))
        for name in ("key_col", "fill_col", "sky_col", "ground_col"):
            p[name].value = tuple(float(x) for x in getattr(light, name))
        p["shadow_soft"].value = float(light.shadow_soft)
        p["sss"].value = float(light.sss)
        p["gloss"].value = float(light.gloss)
        for i, (d, look) in enumerate(zip(data, looks)):
            self.dynamic.write(d)
            p["skin"].value = tuple(float(x) for x in _srgb_to_linear(look.skin))
            p["hand_id"].value = float(i + 1)
            p["sleeve_start"].value = float(look.sleeve_start)
            p["sleeve_col"].value = tuple(float(x) for x in _srgb_to_linear(look.sleeve_col))
            p["watch"].value = float(look.watch)
            p["strap_col"].value = tuple(float(x) for x in _srgb_to_linear(look.strap_col))
            p["ring"].value = float(look.ring)
            p["metal_col"].value = tuple(float(x) for x in _srgb_to_linear(look.metal_col))
            p["detail"].value = float(look.detail)
            self.vao.render(moderngl.TRIANGLES)
        # resolve: average the colour of each ss x ss block, keep the centre sample's geometry and hand
        out = self._targets("out", bw, bh, False)[0]
        out.use()
        out.viewport = (0, 0, bw, bh)
        ctx.scissor = None
        ctx.disable(moderngl.DEPTH_TEST)
        for unit, (tex, name) in enumerate(zip(texs, ("col_tex", "geo_tex", "id_tex"))):
            tex.use(unit + 1)
            self.resolve_prog[name].value = unit + 1
        self.resolve_prog["ss"].value = ss
        self.resolve_vao.render(moderngl.TRIANGLES)
        vp = (0, 0, bw, bh)
        col = np.frombuffer(out.read(vp, 4, attachment=0, dtype="f4"), np.float32).reshape(bh, bw, 4)[::-1]
        geo = np.frombuffer(out.read(vp, 4, attachment=1, dtype="f4"), np.float32).reshape(bh, bw, 4)[::-1]
        ids = np.frombuffer(out.read(vp, 1, attachment=2, dtype="f4"), np.float32).reshape(bh, bw)[::-1]
        hand = np.rint(ids).astype(np.uint8)
        empty.color[y0:y1, x0:x1] = col[..., :3] * 255.0
        empty.coverage[y0:y1, x0:x1] = col[..., 3]
        empty.z[y0:y1, x0:x1] = np.where(hand > 0, geo[..., 0], np.inf)
        empty.normal[y0:y1, x0:x1] = geo[..., 1:]
        empty.hand[y0:y1, x0:x1] = hand
        return empty


def _pixel_box(verts: np.ndarray, k: Intrinsics, pad: int = 2) -> tuple[int, int, int, int] | None:
    """The pixel box (x0, y0, x1, y1) that holds the projection of ``verts`` within the image; the whole image
    when some lie at or behind the camera plane; None when none can be seen."""
    if len(verts) == 0 or verts[:, 2].max() <= 0.01:
        return None
    if verts[:, 2].min() <= 0.01:
        return 0, 0, k.width, k.height
    u, v = project(verts, k).T
    x0, x1 = max(int(np.floor(u.min())) - pad, 0), min(int(np.ceil(u.max())) + pad + 1, k.width)
    y0, y1 = max(int(np.floor(v.min())) - pad, 0), min(int(np.ceil(v.max())) + pad + 1, k.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


class RendererUnavailable(RuntimeError):
    """No OpenGL 3.3 context could be made (no driver, no EGL)."""


def _context(moderngl):
    """A headless context: the platform's default, else EGL (Linux without a display)."""
    errors = []
    # the last: EGL where only the runtime libraries are installed (libEGL.so.1 without the -dev package's libEGL.so)
    for kw in ({}, {"backend": "egl"}, {"backend": "egl", "libegl": "libEGL.so.1", "libgl": "libGL.so.1"}):
        try:
            return moderngl.create_standalone_context(require=330, **kw)
        except Exception as e:  # each backend fails in its own way; all are reported
            errors.append(f"{kw.get('backend', 'default')}: {e}")
    raise RendererUnavailable(
        "the hand renderer needs OpenGL 3.3 (on Linux without a display: EGL with Mesa, e.g. apt-get install "
        "libegl1 libgl1 libegl-mesa0); " + "; ".join(errors)
    )


_RENDERER: GLRenderer | None = None


def renderer() -> GLRenderer:
    """This process's renderer (a forked child makes its own context)."""
    global _RENDERER
    if _RENDERER is None or _RENDERER.pid != os.getpid():
        _RENDERER = GLRenderer()
    return _RENDERER
