/** One series of a grouped bar chart: a label and one value per group (NaN draws nothing). */
export interface Series {
  readonly label: string
  readonly values: ReadonlyArray<number>
}

/** A grouped bar chart. */
export interface BarChart {
  readonly title: string
  readonly yLabel: string
  readonly groups: ReadonlyArray<string>
  readonly series: ReadonlyArray<Series>
}

const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"]
const width = 760
const height = 380
const margin = { top: 48, right: 16, bottom: 64, left: 64 }

const escape = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** A round tick step giving about 5 ticks over `range`. */
const tickStep = (range: number): number => {
  const raw = range / 5
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const normalized = raw / magnitude
  return (normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 5 ? 5 : 10) * magnitude
}

/** Renders `chart` as a standalone SVG document (bars grow up from 0, or down for negative values). */
export const renderBarChart = (chart: BarChart): string => {
  const values = chart.series.flatMap((series) => series.values).filter((value) => Number.isFinite(value))
  const step = tickStep(Math.max(1, Math.max(0, ...values) - Math.min(0, ...values)))
  const yMax = Math.ceil(Math.max(0, ...values) / step) * step || step
  const yMin = Math.floor(Math.min(0, ...values) / step) * step
  const plotWidth = width - margin.left - margin.right
  const plotHeight = height - margin.top - margin.bottom
  const y = (value: number) => margin.top + ((yMax - value) / (yMax - yMin)) * plotHeight
  const groupWidth = plotWidth / chart.groups.length
  const barWidth = (groupWidth * 0.8) / chart.series.length
  const out: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"`
    + ` font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${
      escape(chart.title)
    }</text>`,
    `<text transform="translate(16 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">`
    + `${escape(chart.yLabel)}</text>`
  ]
  for (let tick = yMin; tick <= yMax + step / 2; tick += step) {
    const ty = y(tick).toFixed(1)
    out.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${ty}" y2="${ty}" stroke="${
        tick === 0 ? "#333" : "#ddd"
      }"/>`,
      `<text x="${margin.left - 6}" y="${ty}" dy="4" text-anchor="end">${Number(tick.toPrecision(6))}</text>`
    )
  }
  chart.groups.forEach((group, g) => {
    const groupX = margin.left + g * groupWidth + groupWidth * 0.1
    chart.series.forEach((series, s) => {
      const value = series.values[g] ?? NaN
      if (!Number.isFinite(value)) return
      const x = groupX + s * barWidth
      const top = Math.min(y(value), y(0))
      const barHeight = Math.abs(y(value) - y(0))
      out.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}"`
          + ` height="${barHeight.toFixed(1)}" fill="${colors[s % colors.length]}">`
          + `<title>${escape(`${series.label} ${group}: ${value.toFixed(1)}`)}</title></rect>`,
        `<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(value >= 0 ? top - 3 : top + barHeight + 11).toFixed(1)}"`
          + ` text-anchor="middle" font-size="10">${value.toFixed(0)}</text>`
      )
    })
    out.push(
      `<text x="${(margin.left + (g + 0.5) * groupWidth).toFixed(1)}" y="${height - margin.bottom + 18}"`
        + ` text-anchor="middle">${escape(group)}</text>`
    )
  })
  chart.series.forEach((series, s) => {
    const x = margin.left + s * 190
    const ly = height - 18
    out.push(
      `<rect x="${x}" y="${ly - 10}" width="12" height="12" fill="${colors[s % colors.length]}"/>`,
      `<text x="${x + 18}" y="${ly}">${escape(series.label)}</text>`
    )
  })
  out.push("</svg>")
  return out.join("\n") + "\n"
}
