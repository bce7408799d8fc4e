"""neuston_net's CALC_IMG_NORM (neuston_util.py), reduced to the measured part: Resize([r,r]) + ToTensor, DataLoader
batches of 108 in file order, per-batch float32 mean/std over (0,2,3), averaged over batches. Reads the image paths
from a list file so the C# benchmark can time it on exactly the same files.

usage: /usr/bin/python3 calc_img_norm.py LISTFILE [--resize 299] [--workers N]
"""
import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class ListDataset(Dataset):
    def __init__(self, paths, size):
        self.paths = paths
        self.tf = transforms.Compose([transforms.Resize([size, size]), transforms.ToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], 'rb') as f:
            return self.tf(Image.open(f).convert('RGB'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('listfile')
    ap.add_argument('--resize', type=int, default=299)
    ap.add_argument('--workers', type=int, default=4)
    args = ap.parse_args()
    paths = open(args.listfile).read().splitlines()
    torch.set_num_threads(1)
    start = time.perf_counter()
    loader = DataLoader(ListDataset(paths, args.resize), batch_size=108, shuffle=False, num_workers=args.workers)
    means, stds = [], []
    for batch in loader:
        x = batch.numpy()
        means.append(np.mean(x, axis=(0, 2, 3)))
        stds.append(np.std(x, axis=(0, 2, 3)))
    elapsed = time.perf_counter() - start
    mean = np.mean(means, axis=0)
    std = np.mean(stds, axis=0)
    print(f'images={len(paths)} seconds={elapsed:.4f} mean={mean[0]:.7f} std={std[0]:.7f}')


if __name__ == '__main__':
    main()
